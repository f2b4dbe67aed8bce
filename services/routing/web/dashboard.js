// The county dashboard: fetches /api/v1/stats for the chosen period and place, and draws it.
//
// It rides on the workbench's sign-in: the session cookie (HttpOnly, sent by the browser
// itself). Nobody signed in is sent to the workbench's sign-in, which comes back here.

import { ApiError, api, loginPage } from "/staff/assets/session.js";
import { barChart, lineChart, percent } from "/staff/assets/dashboard-charts.js";

const HERE = "/staff/dashboard";
const DAY_MS = 86_400_000;
const BEIJING_MS = 8 * 3_600_000;
const LEVEL_NAMES = { village: "村(社区)", township: "乡镇", county: "县平台" };

const $ = (selector) => document.querySelector(selector);
const state = { home: null, data: null, query: new URLSearchParams(location.search) };

// ---- dates: the county keeps Beijing time, whatever zone the browser is in -----------------

function beijingDate(instant) {
  return new Date(instant.getTime() + BEIJING_MS).toISOString().slice(0, 10);
}

function shiftDate(isoDate, days) {
  return new Date(Date.parse(`${isoDate}T00:00:00Z`) + days * DAY_MS).toISOString().slice(0, 10);
}

function apiParams() {
  const params = new URLSearchParams();
  const from = state.query.get("from");
  const to = state.query.get("to");
  if (from) params.set("from", `${from}T00:00:00+08:00`);
  if (to) params.set("to", `${shiftDate(to, 1)}T00:00:00+08:00`); // the last day, inclusive
  if (state.query.get("org")) params.set("org", state.query.get("org"));
  return params;
}

// ---- talking to the API --------------------------------------------------------------------

async function download(path) {
  say("正在生成 CSV…");
  try {
    const response = await fetch(`${path}?${apiParams()}`, { credentials: "same-origin" });
    if (!response.ok) throw new ApiError(response.status, (await response.json()).detail);
    const blob = await response.blob();
    const disposition = response.headers.get("Content-Disposition") ?? "";
    const name = /filename="([^"]+)"/.exec(disposition)?.[1] ?? "yijian.csv";
    const link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    link.download = name;
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
    say(`已下载 ${name}`);
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return signIn();
    say(`导出失败（${error.message}）`, "error");
  }
}

function signIn() {
  say("请先登录，正在前往登录页…");
  location.assign(loginPage(HERE));
}

function say(text, kind = "") {
  const status = $("#status");
  status.textContent = text;
  status.className = `status ${kind}`.trim();
}

async function load() {
  say("正在加载…");
  let data;
  try {
    const params = apiParams();
    if (!state.home && params.has("org")) {
      // The picker offers what the user's own jurisdiction covers: learn that first.
      const own = new URLSearchParams(params);
      own.delete("org");
      state.home = await api("GET", `/api/v1/stats?${own}`);
    }
    data = await api("GET", `/api/v1/stats?${params}`);
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    if (error.status === 401) {
      signIn();
    } else if (error.status === 403) {
      say(`无权查看：${error.message}`, "error");
    } else if (error.status === 422) {
      say(`查询条件有误：${error.message}`, "error");
    } else {
      say(error.status ? `加载失败，请稍后重试（${error.message}）` : error.message, "error");
    }
    return;
  }
  if (!state.home) state.home = data; // the user's own jurisdiction: what the picker offers
  state.data = data;
  $("#board").hidden = false;
  render(data);
  say("");
}

// ---- drawing ---------------------------------------------------------------------------------

function count(value, unit) {
  return `${value}${unit}`;
}

function duration(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  if (seconds < 60) return "不到1分钟";
  if (seconds < 3600) return `${Math.round(seconds / 60)}分钟`;
  if (seconds < 2 * DAY_MS / 1000) return `${(seconds / 3600).toFixed(1)}小时`;
  return `${(seconds / 86400).toFixed(1)}天`;
}

function card(title, rows, extraClass = "") {
  const article = document.createElement("article");
  article.className = `card ${extraClass}`.trim();
  const heading = document.createElement("h3");
  heading.textContent = title;
  const list = document.createElement("dl");
  for (const [label, value, key] of rows) {
    const term = document.createElement("dt");
    term.textContent = label;
    const definition = document.createElement("dd");
    definition.textContent = value;
    if (key) definition.dataset.figure = key;
    const pair = document.createElement("div");
    pair.append(term, definition);
    list.append(pair);
  }
  article.append(heading, list);
  return article;
}

function stat(label, value, key, note = "") {
  const article = document.createElement("article");
  article.className = "card stat";
  const term = document.createElement("h3");
  term.textContent = label;
  const number = document.createElement("p");
  number.className = "number";
  number.dataset.figure = key;
  number.textContent = value;
  article.append(term, number);
  if (note) {
    const small = document.createElement("p");
    small.className = "muted";
    small.textContent = note;
    article.append(small);
  }
  return article;
}

function render(data) {
  const firstDay = beijingDate(new Date(data.period.from));
  const lastDay = beijingDate(new Date(Date.parse(data.period.to) - 1));
  $("#scope-name").textContent = data.scope.name;
  document.title = `诉求办理统计 · ${data.scope.name} · 一键`;
  $("#period-text").textContent = `${data.scope.name}　${firstDay} 至 ${lastDay}（北京时间，共${data.period.days}天）`;
  const form = $("#period");
  form.elements.from.value = firstDay;
  form.elements.to.value = lastDay;
  fillOrgPicker(data.scope.code);

  const rated = data.satisfaction;
  $("#summary").replaceChildren(
    stat("受理诉求", count(data.received, "件"), "received"),
    stat("已办结", count(data.resolved, "件"), "resolved", `办结率 ${percent(data.resolution_rate)}`),
    stat("按时办结率", percent(data.on_time_rate), "on_time_rate", "全程未超期"),
    stat("督办升级", count(data.escalations, "次"), "escalations", "超期后由上级督办"),
    stat("村级办结占比", percent(data.share_resolved_at_village), "share_resolved_at_village", "小事不出村"),
    stat(
      "群众满意率",
      percent(rated.satisfied_rate),
      "satisfied_rate",
      rated.rated
        ? `满意${rated.counts.satisfied} · 基本满意${rated.counts.basically_satisfied} · 不满意${rated.counts.unsatisfied}`
        : "暂无评价",
    ),
  );
  $("#levels").replaceChildren(
    ...data.levels.map((level) =>
      card(
        LEVEL_NAMES[level.level] ?? level.level,
        [
          ["受理", count(level.received, "件"), `${level.level}.received`],
          ["办结", count(level.resolved, "件"), `${level.level}.resolved`],
          ["办结率", percent(level.resolution_rate), `${level.level}.resolution_rate`],
          ["本级按期率", percent(level.on_time_rate), `${level.level}.on_time_rate`],
          ["升级督办", count(level.escalations, "次"), `${level.level}.escalations`],
          ["平均签收用时", duration(level.mean_time_to_accept_seconds), `${level.level}.accept`],
        ],
        `level-${level.level}`,
      ),
    ),
  );
  drawCharts(data);
  fillTable(units(data));
}

function units(data) {
  // The county breaks down by township; a township by its villages.
  return data.scope.kind === "county" ? data.by_township : data.by_village;
}

function drawCharts(data) {
  const places = units(data);
  const placeWord = data.scope.kind === "county" ? "乡镇" : "村(社区)";
  $("#rate-title").textContent = `各${placeWord}办结率`;
  barChart(
    $("#chart-rate"),
    places.map((unit) => ({
      label: unit.name,
      value: unit.resolution_rate,
      note: `(${unit.resolved}/${unit.received})`,
    })),
    { title: `${data.scope.name}各${placeWord}办结率` },
  );
  lineChart(
    $("#chart-escalations"),
    data.series.map((day) => ({ day: day.day, value: day.escalations })),
    { title: "每日督办升级次数", kind: "count", unit: "次" },
  );
  lineChart(
    $("#chart-ontime"),
    data.series.map((day) => ({ day: day.day, value: day.on_time_rate })),
    { title: "每日按时办结率", kind: "rate" },
  );
}

function fillTable(places) {
  const body = $("#units-table tbody");
  body.replaceChildren(
    ...places.map((unit) => {
      const row = document.createElement("tr");
      const cells = [
        unit.name,
        unit.received,
        unit.resolved,
        percent(unit.resolution_rate),
        percent(unit.on_time_rate),
        unit.escalations,
        percent(unit.satisfied_rate),
      ];
      cells.forEach((value, index) => {
        const cell = document.createElement(index === 0 ? "th" : "td");
        if (index === 0) cell.scope = "row";
        cell.textContent = String(value);
        row.append(cell);
      });
      return row;
    }),
  );
}

function fillOrgPicker(current) {
  const home = state.home;
  const select = $("#period").elements.org;
  const choices = [[home.scope.code, home.scope.kind === "county" ? "全县" : home.scope.name]];
  if (home.scope.kind !== "village") {
    for (const unit of units(home)) choices.push([unit.code, unit.name]);
  }
  select.replaceChildren(
    ...choices.map(([code, name]) => {
      const option = document.createElement("option");
      option.value = code;
      option.textContent = name;
      option.selected = code === current;
      return option;
    }),
  );
  $("#org-field").hidden = choices.length < 2;
}

// ---- interaction -------------------------------------------------------------------------------

function choose(from, to, org) {
  const query = new URLSearchParams();
  if (from) query.set("from", from);
  if (to) query.set("to", to);
  if (org && org !== state.home?.scope.code) query.set("org", org);
  state.query = query;
  history.replaceState(null, "", query.size ? `?${query}` : location.pathname);
  load();
}

function preset(days) {
  const today = beijingDate(new Date());
  const from = days === "year" ? `${today.slice(0, 4)}-01-01` : shiftDate(today, 1 - Number(days));
  choose(from, today, $("#period").elements.org.value);
}

function redrawWhenResized() {
  let width = window.innerWidth;
  let pending = false;
  window.addEventListener("resize", () => {
    if (pending || window.innerWidth === width) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      width = window.innerWidth;
      if (state.data && !$("#board").hidden) drawCharts(state.data);
    });
  });
}

function start() {
  const form = $("#period");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    choose(form.elements.from.value, form.elements.to.value, form.elements.org.value);
  });
  form.elements.org.addEventListener("change", () => {
    choose(form.elements.from.value, form.elements.to.value, form.elements.org.value);
  });
  for (const button of document.querySelectorAll(".presets button")) {
    button.addEventListener("click", () => preset(button.dataset.days));
  }
  $("#csv-figures").addEventListener("click", () => download("/api/v1/stats.csv"));
  $("#csv-series").addEventListener("click", () => download("/api/v1/stats/series.csv"));
  redrawWhenResized();
  load();
}

start();
