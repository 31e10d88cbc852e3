// A latency chart as SVG: the percentile distribution (x: percentile on a log "nines" scale,
// y: milliseconds), one line per run, no dependencies.
export interface Series {
  label: string;
  /** [percentile (0-100), latency ms] points, ascending percentile. */
  points: [number, number][];
}

const W = 720;
const H = 420;
const M = { left: 60, right: 20, top: 30, bottom: 50 };
const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"];

/** x position of a percentile: equal spacing for 0, 90, 99, 99.9, 99.99. */
const nines = (p: number) => -Math.log10(Math.max(1e-4, 1 - p / 100));

export function latencyChart(title: string, series: Series[]): string {
  const maxX = 4;
  const maxY = Math.max(1, ...series.flatMap((s) => s.points.map(([, y]) => y))) * 1.1;
  const x = (p: number) => M.left + (Math.min(nines(p), maxX) / maxX) * (W - M.left - M.right);
  const y = (v: number) => H - M.bottom - (v / maxY) * (H - M.top - M.bottom);
  const xTicks = [0, 90, 99, 99.9, 99.99].map((p) => `<line x1="${x(p)}" y1="${M.top}" x2="${x(p)}" y2="${H - M.bottom}" stroke="#ddd"/><text x="${x(p)}" y="${H - M.bottom + 18}" text-anchor="middle">p${p}</text>`);
  const yTicks = Array.from({ length: 6 }, (_, i) => (maxY / 5) * i).map((v) => `<line x1="${M.left}" y1="${y(v)}" x2="${W - M.right}" y2="${y(v)}" stroke="#eee"/><text x="${M.left - 6}" y="${y(v) + 4}" text-anchor="end">${v.toFixed(v < 10 ? 1 : 0)}</text>`);
  const lines = series.map((s, i) => {
    const color = COLORS[i % COLORS.length] ?? "#000";
    const d = s.points.map(([p, v], k) => `${k === 0 ? "M" : "L"}${x(p).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
    return `<path d="${d}" fill="none" stroke="${color}" stroke-width="2"/><text x="${W - M.right - 4}" y="${M.top + 16 * (i + 1)}" text-anchor="end" fill="${color}">${escape(s.label)}</text>`;
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="${W / 2}" y="18" text-anchor="middle" font-size="14">${escape(title)}</text>
${xTicks.join("\n")}
${yTicks.join("\n")}
<text x="16" y="${H / 2}" transform="rotate(-90 16 ${H / 2})" text-anchor="middle">latency (ms)</text>
<text x="${W / 2}" y="${H - 10}" text-anchor="middle">percentile</text>
${lines.join("\n")}
</svg>
`;
}

const escape = (s: string) => s.replace(/[<>&"]/g, (c) => `&#${c.charCodeAt(0)};`);
