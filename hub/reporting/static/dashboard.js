// The ministry's dashboard: logs a person in, reads /reports/* with their bearer token every
// refresh_seconds, and draws the figures with the vendored Chart.js. Every text comes from
// i18n/<lang>.json; data is only ever written into the page as text, never as HTML.
"use strict";

(() => {
  const TOKEN_KEY = "ehrhub.dashboard.token";
  const LANGUAGE_KEY = "ehrhub.dashboard.language";
  const AXES = ["correct", "sufficient", "clean", "live", "unified", "shared"];
  const LOCALES = { vi: "vi-VN", id: "id-ID", en: "en-GB" };
  const RANKING_ROWS = 50;
  const DAY = 24 * 60 * 60 * 1000;
  const COLORS = { actual: "#0b5cad", fill: "rgba(11, 92, 173, 0.12)", target: "#b42318" };

  const state = {
    config: { default_language: "en", refresh_seconds: 60 },
    lang: "en",
    texts: {},
    coverage: null,
    roadmap: null,
    quality: null, // the quality report, or null while /reports/quality answers 404
    sort: { key: "connected_share", type: "number", direction: -1 },
    facility: null,
    facilityQuality: null,
    refreshedAt: null,
    error: null,
    timer: null,
    charts: [],
  };

  const $ = (selector) => document.querySelector(selector);

  class HttpError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  // --- Texts and numbers in the chosen language ---------------------------------------------

  function t(key, values = {}) {
    const text = state.texts[key] ?? key;
    return text.replace(/\{(\w+)\}/g, (_, name) => String(values[name] ?? ""));
  }

  const locale = () => LOCALES[state.lang] || "en-GB";
  const number = (value) =>
    value === null || value === undefined ? "–" : new Intl.NumberFormat(locale()).format(value);
  const percent = (share) =>
    share === null || share === undefined
      ? "–"
      : new Intl.NumberFormat(locale(), { style: "percent", maximumFractionDigits: 1 }).format(share);
  const score = (value) =>
    value === null || value === undefined
      ? "–"
      : new Intl.NumberFormat(locale(), { maximumFractionDigits: 1 }).format(value);
  const day = (iso) => (iso ? new Date(iso).toLocaleString(locale()) : "–");
  const yesNo = (flag) => t(flag ? "yes" : "no");
  // An axis by its name in the chosen language; one the texts do not know, as the report names it.
  const axisName = (axis) => state.texts[`axis_${axis}`] ?? axis;
  // A report's day (yyyy-mm-dd, or its UTC midnight in milliseconds) in the chosen language.
  const dateOf = (value) =>
    new Date(typeof value === "string" ? Date.parse(value) : value).toLocaleDateString(locale(), {
      timeZone: "UTC",
    });

  async function useLanguage(lang) {
    const answer = await fetch(`/dashboard/static/i18n/${encodeURIComponent(lang)}.json`);
    if (!answer.ok) throw new HttpError(answer.status, `no texts for the language ${lang}`);
    state.texts = await answer.json();
    state.lang = lang;
    sessionStorage.setItem(LANGUAGE_KEY, lang);
    document.documentElement.lang = lang;
    $("#language").value = lang;
    for (const node of document.querySelectorAll("[data-i18n]")) {
      node.textContent = t(node.dataset.i18n);
    }
    render();
  }

  // --- Building the page's parts ------------------------------------------------------------

  function element(tag, attributes = {}, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes)) {
      if (name === "dataset") Object.assign(node.dataset, value);
      else if (name === "onclick") node.addEventListener("click", value);
      else node.setAttribute(name, value);
    }
    for (const child of children) {
      node.append(child instanceof Node ? child : String(child ?? ""));
    }
    return node;
  }

  function figures(list, pairs) {
    list.replaceChildren();
    for (const [key, value, shown] of pairs) {
      list.append(
        element(
          "div",
          { class: "figure" },
          element("dt", {}, t(key)),
          element("dd", { dataset: { figure: key, value: String(value ?? "") } }, shown)
        )
      );
    }
  }

  function chart(canvas, config) {
    const made = new Chart(canvas, config);
    state.charts.push(made);
    return made;
  }

  function scaleTitle(text) {
    return { display: true, text, font: { size: 13, weight: "bold" } };
  }

  // --- The reports ----------------------------------------------------------------------------

  async function api(path) {
    const token = sessionStorage.getItem(TOKEN_KEY);
    const answer = await fetch(path, {
      headers: { Authorization: `Bearer ${token}`, Accept: "application/json" },
    });
    if (!answer.ok) {
      let message = `${answer.status} ${answer.statusText}`;
      try {
        const body = await answer.json();
        message = body.issue?.[0]?.diagnostics || body.error_description || message;
      } catch {
        // not JSON: the status says enough
      }
      throw new HttpError(answer.status, message);
    }
    return answer.json();
  }

  async function optional(path) {
    try {
      return await api(path);
    } catch (error) {
      if (error.status === 404) return null;
      throw error;
    }
  }

  async function refresh() {
    try {
      const [coverage, roadmap, quality] = await Promise.all([
        api("/reports/coverage"),
        api("/reports/roadmap"),
        optional("/reports/quality"),
      ]);
      Object.assign(state, { coverage, roadmap, quality, error: null, refreshedAt: new Date() });
      if (state.facility) state.facilityQuality = await facilityQuality(state.facility);
    } catch (error) {
      if (error.status === 401) return loggedOut("session_expired");
      if (error.status === 403) return loggedOut("forbidden");
      state.error = error.message;
    }
    render();
  }

  async function facilityQuality(code) {
    return state.quality ? optional(`/reports/quality/${encodeURIComponent(code)}`) : null;
  }

  // --- Rendering --------------------------------------------------------------------------------

  function render() {
    renderStatus();
    if (!state.coverage || !state.roadmap) return;
    for (const made of state.charts.splice(0)) made.destroy();
    for (const node of document.querySelectorAll(".quality-only")) node.hidden = !state.quality;
    for (const node of document.querySelectorAll(".quality-missing")) node.hidden = !!state.quality;
    renderRoadmap();
    renderNational();
    renderProvinces();
    renderRanking();
    renderFacility();
  }

  function renderStatus() {
    $("#report-date").textContent = state.coverage?.date ?? "";
    $("#report-date").dateTime = state.coverage?.date ?? "";
    const time = state.refreshedAt ? state.refreshedAt.toLocaleTimeString(locale()) : "";
    const status = $("#refreshed");
    status.classList.toggle("error", !!state.error);
    if (state.error) {
      status.textContent = t("refresh_failed", { time: new Date().toLocaleTimeString(locale()), error: state.error });
    } else {
      status.textContent = time ? t("last_refreshed", { time, seconds: state.config.refresh_seconds }) : "";
    }
  }

  function titleOf(milestone) {
    const titles = milestone.title || {};
    return titles[state.lang] || titles.en || Object.values(titles)[0] || milestone.id;
  }

  function renderRoadmap() {
    const cards = $("#milestones");
    cards.replaceChildren();
    if (!state.roadmap.milestones.length) {
      cards.append(element("p", { class: "note" }, t("no_milestones")));
    }
    for (const milestone of state.roadmap.milestones) {
      const title = titleOf(milestone);
      const target = milestone.targets.connected_share;
      const list = element("dl", { class: "figures compact" });
      const canvas = element("canvas", {
        role: "img",
        "aria-label": t("chart_alt", { title, target: percent(target) }),
        dataset: { milestone: milestone.id },
      });
      const card = element(
        "article",
        { class: "card", dataset: { milestone: milestone.id } },
        element("h3", {}, title),
        list,
        element("div", { class: "chart" }, canvas)
      );
      cards.append(card);
      const pairs = [
        ["due", milestone.due, dateOf(milestone.due)],
        ["status", milestone.status, t(`status_${milestone.status}`)],
        ["days_left", milestone.days_left, number(milestone.days_left)],
        ["registered", milestone.actual.registered, number(milestone.actual.registered)],
        ["connected", milestone.actual.connected, number(milestone.actual.connected)],
      ];
      if (target !== undefined) {
        pairs.push(["target", target, percent(target)]);
        pairs.push(["actual", milestone.actual.connected_share, percent(milestone.actual.connected_share)]);
      }
      if (milestone.targets.people !== undefined) {
        pairs.push(["target_people", milestone.targets.people, number(milestone.targets.people)]);
        pairs.push(["people", milestone.actual.people, number(milestone.actual.people)]);
      }
      figures(list, pairs);
      list.querySelector('[data-figure="status"]').classList.add("status", `status-${milestone.status.replace(" ", "-")}`);
      if (!milestone.trend.length) card.append(element("p", { class: "note" }, t("no_trend")));
      drawTrend(canvas, milestone.trend, target, milestone.due);
    }
  }

  // Days are drawn on a linear axis of UTC milliseconds: the span from the first connection
  // to the due date keeps its true length, and no date adapter is needed.
  function drawTrend(canvas, trend, target, due) {
    const points = trend.map((point) => ({ x: Date.parse(point.day), y: point.connected_share }));
    const dueAt = Date.parse(due);
    const xs = [...points.map((point) => point.x), dueAt];
    let [from, to] = [Math.min(...xs), Math.max(...xs)];
    // A margin, so that the first and last points are drawn whole.
    const margin = Math.max(DAY, (to - from) / 50);
    [from, to] = [from - margin, to + margin];
    const datasets = [
      {
        label: t("trend_label"),
        data: points,
        borderColor: COLORS.actual,
        backgroundColor: COLORS.fill,
        fill: true,
        pointRadius: points.length > 60 ? 0 : 3,
      },
    ];
    if (target !== undefined) {
      // Across the whole chart, with a marker on the due date.
      const line = [...new Set([from, dueAt, to])].sort((a, b) => a - b);
      datasets.push({
        label: t("target_line"),
        data: line.map((x) => ({ x, y: target })),
        borderColor: COLORS.target,
        backgroundColor: "transparent",
        pointBackgroundColor: COLORS.target,
        borderDash: [6, 4],
        pointRadius: line.map((x) => (x === dueAt ? 5 : 0)),
        fill: false,
      });
    }
    const days = Math.max(1, Math.ceil((to - from) / DAY / 6));
    chart(canvas, {
      type: "line",
      data: { datasets },
      options: {
        animation: false,
        maintainAspectRatio: false,
        scales: {
          x: {
            type: "linear",
            min: from,
            max: to,
            title: scaleTitle(t("axis_day")),
            ticks: { stepSize: days * DAY, callback: (value) => dateOf(value) },
          },
          y: {
            min: 0,
            max: 1,
            title: scaleTitle(t("axis_share")),
            ticks: { callback: (value) => percent(value) },
          },
        },
        plugins: {
          legend: { position: "bottom" },
          tooltip: {
            callbacks: {
              title: (items) => dateOf(items[0].parsed.x),
              label: (item) => `${item.dataset.label}: ${percent(item.parsed.y)}`,
            },
          },
        },
      },
    });
  }

  function renderNational() {
    const national = state.coverage.national;
    const keys = ["registered", "connected", "live", "records", "patients", "people"];
    const pairs = keys.map((key) => [key, national[key], number(national[key])]);
    pairs.splice(2, 0, ["coverage_share", national.connected_share, percent(national.connected_share)]);
    pairs.push(["submissions_accepted", national.submissions_accepted, number(national.submissions_accepted)]);
    pairs.push(["submissions_refused", national.submissions_refused, number(national.submissions_refused)]);
    if (state.quality) {
      const composite = state.quality.national.composite;
      pairs.push(["quality_composite", composite, score(composite)]);
    }
    figures($("#national-figures"), pairs);
  }

  function compare(key, type, direction) {
    return (a, b) => {
      const [x, y] = [a[key], b[key]];
      if (x === null || x === undefined) return 1;
      if (y === null || y === undefined) return -1;
      const order = type === "text" ? String(x).localeCompare(String(y), locale()) : x - y;
      return order * direction;
    };
  }

  function renderProvinces() {
    const scores = new Map((state.quality?.provinces || []).map((row) => [row.province, row.composite]));
    const rows = state.coverage.provinces.map((row) => ({
      ...row,
      name: row.name || row.province,
      composite: scores.get(row.province) ?? null,
    }));
    const { key, type, direction } = state.sort;
    rows.sort(compare(key, type, direction));
    for (const header of document.querySelectorAll("#province-table th[data-sort]")) {
      const sorted = header.dataset.sort === key;
      header.setAttribute("aria-sort", sorted ? (direction > 0 ? "ascending" : "descending") : "none");
    }
    const body = $("#province-table tbody");
    body.replaceChildren(
      ...rows.map((row) => {
        const cells = [
          element("th", { scope: "row", dataset: { key: "name" } }, row.name),
          element("td", { dataset: { key: "registered" } }, number(row.registered)),
          element("td", { dataset: { key: "connected" } }, number(row.connected)),
          element("td", { dataset: { key: "connected_share" } }, percent(row.connected_share)),
          element("td", { dataset: { key: "live_share" } }, percent(row.live_share)),
          element("td", { dataset: { key: "records" } }, number(row.records)),
        ];
        if (state.quality) cells.push(element("td", { dataset: { key: "composite" } }, score(row.composite)));
        return element("tr", { dataset: { province: row.province } }, ...cells);
      })
    );
  }

  function sortProvinces(header) {
    const key = header.dataset.sort;
    const same = state.sort.key === key;
    // Numbers start from the largest, names from A.
    const first = header.dataset.type === "text" ? 1 : -1;
    state.sort = { key, type: header.dataset.type, direction: same ? -state.sort.direction : first };
    renderProvinces();
  }

  function rankedFacilities() {
    const quality = new Map((state.quality?.facilities || []).map((row) => [row.facility, row]));
    const rows = state.coverage.facilities.map((row) => ({
      ...row,
      composite: quality.get(row.facility)?.composite ?? null,
      quality_rank: quality.get(row.facility)?.rank ?? null,
    }));
    if (state.quality) {
      rows.sort(compare("composite", "number", -1));
    } else {
      rows.sort(
        (a, b) =>
          Number(b.connected) - Number(a.connected) ||
          Number(b.live) - Number(a.live) ||
          b.records - a.records ||
          String(a.name).localeCompare(String(b.name), locale())
      );
    }
    return rows;
  }

  function renderRanking() {
    const rows = rankedFacilities();
    const shown = rows.slice(0, RANKING_ROWS);
    $("#ranking-basis").textContent = t(state.quality ? "ranking_by_quality" : "ranking_by_coverage");
    $("#ranking-count").textContent = t("showing", { shown: number(shown.length), total: number(rows.length) });
    $("#facility-table tbody").replaceChildren(
      ...shown.map((row, index) => {
        const open = element(
          "button",
          { type: "button", class: "link", onclick: () => openFacility(row.facility) },
          row.name || row.facility
        );
        const cells = [
          element("td", { dataset: { key: "rank" } }, number(row.quality_rank ?? index + 1)),
          element("th", { scope: "row", dataset: { key: "name" } }, open),
          element("td", {}, row.province_name || row.province),
          element("td", {}, row.level),
          element("td", {}, yesNo(row.connected)),
          element("td", {}, yesNo(row.live)),
          element("td", { dataset: { key: "records" } }, number(row.records)),
          element("td", {}, day(row.last_submission)),
        ];
        if (state.quality) cells.push(element("td", { dataset: { key: "composite" } }, score(row.composite)));
        return element("tr", { dataset: { facility: row.facility } }, ...cells);
      })
    );
  }

  async function openFacility(code) {
    state.facility = code;
    try {
      state.facilityQuality = await facilityQuality(code);
    } catch (error) {
      state.facilityQuality = null;
      state.error = error.message;
    }
    render();
    $("#facility").scrollIntoView({ behavior: "smooth", block: "start" });
  }

  function renderFacility() {
    const row = state.coverage.facilities.find((f) => f.facility === state.facility);
    $("#facility-hint").hidden = !!row;
    $("#facility-detail").hidden = !row;
    $("#facility-name").textContent = row ? `: ${row.name || row.facility} (${row.facility})` : "";
    if (!row) return;
    const byType = Object.entries(row.records_by_type || {})
      .map(([type, n]) => `${type} ${number(n)}`)
      .join(", ");
    figures($("#facility-figures"), [
      ["province", row.province, row.province_name || row.province],
      ["level", row.level, row.level],
      ["connected", row.connected, yesNo(row.connected)],
      ["live", row.live, yesNo(row.live)],
      ["first_submission", row.first_submission, day(row.first_submission)],
      ["last_submission", row.last_submission, day(row.last_submission)],
      ["submissions_accepted", row.submissions_accepted, number(row.submissions_accepted)],
      ["submissions_refused", row.submissions_refused, number(row.submissions_refused)],
      ["records", row.records, number(row.records)],
      ["records_by_type", "", byType || t("none")],
      ["patients", row.patients, number(row.patients)],
      ["mean_delay_hours", row.mean_delay_hours, score(row.mean_delay_hours)],
      ["timely_share", row.timely_share, percent(row.timely_share)],
    ]);
    const quality = state.facilityQuality;
    $("#facility-quality-missing").hidden = !!quality;
    $("#facility-quality").hidden = !quality;
    if (!quality) return;
    figures($("#facility-composite"), [
      ["composite", quality.composite, score(quality.composite)],
      ["rank", quality.rank, number(quality.rank)],
      ["province_rank", quality.province_rank, number(quality.province_rank)],
    ]);
    const canvas = $("#quality-chart");
    canvas.setAttribute("aria-label", t("quality_chart_alt", { name: quality.name || quality.facility }));
    chart(canvas, {
      type: "radar",
      data: {
        labels: AXES.map(axisName),
        datasets: [
          {
            label: t("score"),
            data: AXES.map((axis) => quality.scores[axis] ?? null),
            borderColor: COLORS.actual,
            backgroundColor: COLORS.fill,
          },
        ],
      },
      options: {
        animation: false,
        maintainAspectRatio: false,
        scales: { r: { min: 0, max: 100, pointLabels: { font: { size: 13 } } } },
        plugins: { legend: { position: "bottom" } },
      },
    });
    const rules = quality.worst_rules || [];
    $("#rules-table tbody").replaceChildren(
      ...(rules.length
        ? rules.map((rule) =>
            element(
              "tr",
              {},
              element("th", { scope: "row" }, rule.rule),
              element("td", {}, rule.severity),
              element("td", {}, axisName(rule.axis)),
              element("td", {}, number(rule.records))
            )
          )
        : [element("tr", {}, element("td", { colspan: "4" }, t("no_rules")))])
    );
  }

  // --- Logging in and out ------------------------------------------------------------------------

  function loggedOut(reason) {
    clearInterval(state.timer);
    state.timer = null;
    sessionStorage.removeItem(TOKEN_KEY);
    $("#reports").hidden = true;
    $("#logout").hidden = true;
    $("#login-section").hidden = false;
    $("#login-error").textContent = reason ? t(reason) : "";
  }

  async function start() {
    $("#login-section").hidden = true;
    $("#reports").hidden = false;
    $("#logout").hidden = false;
    await refresh();
    if (sessionStorage.getItem(TOKEN_KEY) && state.timer === null) {
      state.timer = setInterval(refresh, state.config.refresh_seconds * 1000);
    }
  }

  async function logIn(event) {
    event.preventDefault();
    const form = new URLSearchParams(new FormData(event.target));
    const answer = await fetch("/auth/login", { method: "POST", body: form });
    if (!answer.ok) {
      $("#login-error").textContent = t("login_failed");
      return;
    }
    sessionStorage.setItem(TOKEN_KEY, (await answer.json()).access_token);
    event.target.reset();
    $("#login-error").textContent = "";
    await start();
  }

  async function main() {
    Chart.defaults.font.size = 13;
    Chart.defaults.color = "#1f2933";
    const answer = await fetch("/dashboard/config");
    if (answer.ok) state.config = await answer.json();
    $("#language").addEventListener("change", (event) => useLanguage(event.target.value));
    $("#login-form").addEventListener("submit", logIn);
    $("#logout").addEventListener("click", () => loggedOut(null));
    for (const header of document.querySelectorAll("#province-table th[data-sort]")) {
      header.querySelector("button").addEventListener("click", () => sortProvinces(header));
    }
    await useLanguage(sessionStorage.getItem(LANGUAGE_KEY) || state.config.default_language);
    if (sessionStorage.getItem(TOKEN_KEY)) await start();
    else loggedOut(null);
    document.body.dataset.ready = "true";
  }

  main();
})();
