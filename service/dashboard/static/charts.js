/* Loss charts with uPlot (vendored, loaded as the global `uPlot`): zoom by dragging, reset by
 * double-clicking, values under the cursor in the legend. */

import { fmt, h } from "./lib.js";

/** A uPlot line chart in `el`: x = iteration, one y series per entry of `lines`
 *  ({label, color, scale: "y" (loss, the default) | "acc" (accuracy, right axis)}). */
function lineChart(el, lines, data, { log, height }) {
  const axes = [{ label: "iteration" }, { scale: "y", label: "loss", size: 60 }];
  if (lines.some((l) => l.scale === "acc")) {
    axes.push({ scale: "acc", side: 1, label: "accuracy", grid: { show: false },
      values: (u, ticks) => ticks.map((t) => `${Math.round(t * 100)}%`) });
  }
  const series = lines.map((l) => ({
    label: l.label, stroke: l.color, width: 1.5, scale: l.scale || "y", spanGaps: true,
    value: l.scale === "acc" ? (u, v) => fmt.pct(v) : (u, v) => fmt.num(v, 5),
  }));
  const opts = {
    width: Math.max(300, el.clientWidth),
    height,
    scales: { x: { time: false }, y: log ? { distr: 3, log: 10 } : {}, acc: { range: [0, 1] } },
    series: [{ label: "iteration" }, ...series],
    axes,
    cursor: { drag: { x: true, y: false } },
    hooks: {
      setScale: [(u, key) => { // the visible range, for tests and the curious
        if (key === "x") Object.assign(el.dataset, { xMin: u.scales.x.min, xMax: u.scales.x.max });
      }],
    },
  };
  const chart = new uPlot(opts, logSafe(data, lines, log), el);
  chart.dataRange = [data[0][0], data[0][data[0].length - 1]];
  return chart;
}

/** On a log scale, losses that are not positive cannot be drawn: make them gaps. */
function logSafe(data, lines, log) {
  if (!log) return data;
  const positive = (col) => col.map((v) => (v != null && v > 0 ? v : null));
  return data.map((col, i) => (i > 0 && lines[i - 1].scale !== "acc" ? positive(col) : col));
}

/** New data for a chart, keeping the user's zoom when they have zoomed in. (The arrays may be
 *  the ones the chart holds, grown in place, so compare with the range drawn last time.) */
function updateChart(chart, data, lines, log) {
  const [first, last] = chart.dataRange;
  const { min, max } = chart.scales.x;
  const zoomed = first != null && (min > first || max < last);
  chart.setData(logSafe(data, lines, log), !zoomed);
  chart.dataRange = [data[0][0], data[0][data[0].length - 1]];
}

/** A chart in `el`, redrawn by `draw(lines, data)` as data comes: it keeps the user's zoom,
 *  follows its box's width, and puts the loss on a log scale while `logBox` is ticked. */
export function chartPanel(el, logBox, signal, height = 320) {
  let chart = null, lines = [], data = null;
  const labels = (ls) => ls.map((l) => l.label).join("\n");
  const panel = {
    draw(newLines, newData) {
      const same = chart && labels(newLines) === labels(lines);
      lines = newLines;
      data = newData;
      if (same) return updateChart(chart, data, lines, logBox.checked);
      if (chart) chart.destroy();
      chart = lineChart(el, lines, data, { log: logBox.checked, height });
    },
  };
  logBox.addEventListener("change", () => {
    if (!chart) return;
    chart.destroy();
    chart = null;
    panel.draw(lines, data);
  });
  const observer = new ResizeObserver(() => {
    const width = Math.max(300, el.clientWidth);
    if (chart && chart.width !== width) chart.setSize({ width, height });
  });
  observer.observe(el);
  signal.addEventListener("abort", () => {
    observer.disconnect();
    if (chart) chart.destroy();
  });
  return panel;
}

export const chartHints = (logBox) => h("label", { class: "muted hints" }, logBox,
  " log scale · drag to zoom, double-click to reset · hover for values");

/** Halve a long series, keeping each bucket's lowest and highest loss so spikes survive. */
export function thin(cols) {
  const n = cols.iteration.length;
  const out = Object.fromEntries(Object.keys(cols).map((k) => [k, []]));
  const keep = (i) => { for (const k in out) out[k].push(cols[k][i]); };
  keep(0);
  for (let start = 1; start < n - 1; start += 4) {
    let lo = start, hi = start;
    for (let i = start; i < Math.min(start + 4, n - 1); i++) {
      if (cols.loss[i] < cols.loss[lo]) lo = i;
      if (cols.loss[i] > cols.loss[hi]) hi = i;
    }
    keep(Math.min(lo, hi));
    if (hi !== lo) keep(Math.max(lo, hi));
  }
  if (n > 1) keep(n - 1);
  return out;
}
