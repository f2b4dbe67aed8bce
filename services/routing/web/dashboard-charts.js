// Small SVG charts for the dashboard: horizontal bars and a line over days.
//
// Drawn at the container's real pixel width (and redrawn when it changes) rather than
// scaled from a fixed viewBox, so labels keep a readable size on a phone. Every chart has
// a <title> and a <desc> that states the values in words, and every mark carries its
// value as text, so a screen reader or a colour-blind reader loses nothing.

const SVG = "http://www.w3.org/2000/svg";

function node(name, attributes = {}, text) {
  const element = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) {
    element.setAttribute(key, String(value));
  }
  if (text !== undefined) element.textContent = text;
  return element;
}

let serial = 0;

function frame(container, width, height, title, description) {
  serial += 1;
  const titleId = `chart-title-${serial}`;
  const descId = `chart-desc-${serial}`;
  const svg = node("svg", {
    width,
    height,
    viewBox: `0 0 ${width} ${height}`,
    role: "img",
    "aria-labelledby": `${titleId} ${descId}`,
    class: "chart",
  });
  svg.append(node("title", { id: titleId }, title), node("desc", { id: descId }, description));
  container.replaceChildren(svg);
  return svg;
}

export function percent(rate) {
  return rate === null || rate === undefined ? "—" : `${(rate * 100).toFixed(1)}%`;
}

// items: [{label, value (0..1 or null), note}] — value null draws no bar and says "无数据".
export function barChart(container, items, { title, emptyText = "无数据" }) {
  const width = Math.max(container.clientWidth, 280);
  const labelWidth = Math.min(130, Math.round(width * 0.32));
  const valueWidth = 96; // room after the longest bar for "100.0% (12/12)"
  const row = 28;
  const top = 8;
  const height = top + items.length * row + 24;
  const plot = Math.max(width - labelWidth - valueWidth, 40);
  const description = items
    .map((item) => `${item.label}：${item.value === null ? emptyText : percent(item.value)}`)
    .join("；");
  const svg = frame(container, width, height, title, description);

  for (const tick of [0, 0.5, 1]) {
    const x = labelWidth + tick * plot;
    svg.append(
      node("line", { x1: x, x2: x, y1: top, y2: height - 20, class: "grid" }),
      node("text", { x, y: height - 6, class: "axis", "text-anchor": "middle" }, percent(tick).replace(".0", "")),
    );
  }
  items.forEach((item, index) => {
    const y = top + index * row;
    const group = node("g", { class: "bar" });
    group.append(node("title", {}, `${item.label} ${percent(item.value)} ${item.note ?? ""}`.trim()));
    group.append(
      node("text", { x: labelWidth - 8, y: y + row / 2 + 4, class: "label", "text-anchor": "end" }, item.label),
    );
    const barWidth = item.value === null ? 0 : Math.max(item.value * plot, 2);
    if (item.value !== null) {
      group.append(
        node("rect", {
          x: labelWidth,
          y: y + 5,
          width: barWidth,
          height: row - 10,
          rx: 2,
          class: item.value < 0.6 ? "mark warn" : "mark",
        }),
      );
    }
    const text = item.value === null ? emptyText : `${percent(item.value)} ${item.note ?? ""}`.trim();
    group.append(
      node("text", { x: labelWidth + barWidth + 6, y: y + row / 2 + 4, class: "value" }, text),
    );
    svg.append(group);
  });
}

function niceMax(value) {
  if (value <= 4) return 4;
  const step = 10 ** Math.floor(Math.log10(value));
  for (const factor of [1, 2, 2.5, 5, 10]) {
    if (factor * step >= value) return factor * step;
  }
  return 10 * step;
}

// points: [{day: "YYYY-MM-DD", value: number|null}]; a null leaves a gap in the line.
// kind "count" fills the area under the line; kind "rate" plots 0..100%.
export function lineChart(container, points, { title, kind, unit = "" }) {
  const width = Math.max(container.clientWidth, 280);
  const height = 220;
  const left = kind === "rate" ? 46 : 36;
  const right = 12;
  const top = 14;
  const bottom = 30;
  const plotW = width - left - right;
  const plotH = height - top - bottom;
  const values = points.map((p) => p.value).filter((v) => v !== null);
  const max = kind === "rate" ? 1 : niceMax(Math.max(0, ...values));
  const x = (index) => left + (points.length <= 1 ? plotW / 2 : (index / (points.length - 1)) * plotW);
  const y = (value) => top + plotH - (value / max) * plotH;
  const show = (value) => (kind === "rate" ? percent(value) : `${value}${unit}`);
  const shortDay = (day) => `${Number(day.slice(5, 7))}/${Number(day.slice(8, 10))}`;

  const described = points.filter((p) => p.value !== null && (kind === "rate" || p.value > 0));
  const description = described.length
    ? described.map((p) => `${p.day} ${show(p.value)}`).join("；")
    : "期间内没有数据";
  const svg = frame(container, width, height, title, description);

  const ticks = kind === "rate" ? [0, 0.5, 1] : [0, max / 2, max];
  for (const tick of ticks) {
    svg.append(
      node("line", { x1: left, x2: width - right, y1: y(tick), y2: y(tick), class: "grid" }),
      node("text", { x: left - 6, y: y(tick) + 4, class: "axis", "text-anchor": "end" }, kind === "rate" ? percent(tick).replace(".0", "") : String(tick)),
    );
  }
  const every = Math.max(1, Math.ceil(points.length / Math.max(2, Math.floor(plotW / 56))));
  points.forEach((point, index) => {
    const last = index === points.length - 1;
    // The last day always gets a label; a regular one too close to it gives way.
    if (last || (index % every === 0 && points.length - 1 - index >= Math.ceil(every * 0.75))) {
      // The first and last labels align to the plot's edges so that neither is cut off.
      const anchor = points.length > 1 && last ? "end" : index === 0 && points.length > 1 ? "start" : "middle";
      svg.append(
        node("text", { x: x(index), y: height - 10, class: "axis", "text-anchor": anchor }, shortDay(point.day)),
      );
    }
  });

  // Runs of consecutive known values become one path each; gaps stay gaps.
  const runs = [];
  let current = [];
  points.forEach((point, index) => {
    if (point.value === null) {
      if (current.length) runs.push(current);
      current = [];
    } else {
      current.push([x(index), y(point.value)]);
    }
  });
  if (current.length) runs.push(current);
  for (const run of runs) {
    const line = run.map(([px, py], i) => `${i ? "L" : "M"}${px.toFixed(1)},${py.toFixed(1)}`).join("");
    if (kind === "count" && run.length > 1) {
      const base = y(0).toFixed(1);
      svg.append(node("path", { d: `${line}L${run.at(-1)[0].toFixed(1)},${base}L${run[0][0].toFixed(1)},${base}Z`, class: "area" }));
    }
    svg.append(node("path", { d: line, class: "line" }));
  }
  // Dots where they have room; on a crowded axis only where a count is not zero.
  const roomy = points.length < 2 || plotW / (points.length - 1) >= 14;
  points.forEach((point, index) => {
    if (point.value === null || (!roomy && kind === "count" && point.value === 0)) return;
    const dot = node("circle", { cx: x(index), cy: y(point.value), r: 3, class: "dot" });
    dot.append(node("title", {}, `${point.day}：${show(point.value)}`));
    svg.append(dot);
  });
}
