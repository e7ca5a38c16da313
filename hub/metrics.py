"""Prometheus metrics of the hub's HTTP traffic, kept in process."""

from collections import defaultdict


class Metrics:
    """Request counts and durations by method, route and status."""

    def __init__(self) -> None:
        self.count: dict[tuple[str, str, int], int] = defaultdict(int)
        self.seconds: dict[tuple[str, str, int], float] = defaultdict(float)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """Record one finished request."""
        self.count[(method, route, status)] += 1
        self.seconds[(method, route, status)] += seconds

    def exposition(self) -> str:
        """Return the metrics in Prometheus' text format."""
        lines = [
            "# HELP ehrhub_http_requests_total HTTP requests answered.",
            "# TYPE ehrhub_http_requests_total counter",
        ]
        for labels, n in sorted(self.count.items()):
            lines.append(f"ehrhub_http_requests_total{{{_labels(labels)}}} {n}")
        lines += [
            "# HELP ehrhub_http_request_seconds_total Time spent answering HTTP requests.",
            "# TYPE ehrhub_http_request_seconds_total counter",
        ]
        for labels, s in sorted(self.seconds.items()):
            lines.append(f"ehrhub_http_request_seconds_total{{{_labels(labels)}}} {s:.6f}")
        return "\n".join(lines) + "\n"


def _labels(key: tuple[str, str, int]) -> str:
    method, route, status = key
    return f'method="{method}",route="{route}",status="{status}"'
