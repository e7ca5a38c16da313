"""Keep resources in MongoDB and run the embedded database."""
