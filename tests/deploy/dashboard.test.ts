// The Grafana dashboard (helm/chat/dashboards/chat-mesh.json), held to the code so it cannot
// drift silently: every metric its PromQL names is one an instrument in the source defines (in
// its Prometheus form), every label it uses is an attribute the code records or one Prometheus
// adds, and every metric the code defines is on it. The instruments are read from the source with
// the TypeScript parser; an instrument whose name is not a literal fails the test, so none hides.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { SERVED_METRICS } from "../support/metrics.js";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const DASHBOARD = "helm/chat/dashboards/chat-mesh.json";

/** Where instruments may be created: the services, the shared packages, the entry point. */
function sourceFiles(): string[] {
  const roots = [
    ...readdirSync(`${ROOT}services`).map((s) => `services/${s}/src`),
    ...readdirSync(`${ROOT}packages`).map((p) => `packages/${p}/src`),
    "cmd",
  ];
  return roots.flatMap((dir) =>
    readdirSync(`${ROOT}${dir}`, { recursive: true, encoding: "utf8" })
      .filter((f) => f.endsWith(".ts") && !f.endsWith(".d.ts"))
      .map((f) => `${dir}/${f}`),
  );
}

/** The Prometheus exporter's spelling: characters outside [a-zA-Z0-9_:] become "_", runs of "_" one. */
const promName = (name: string) => name.replace(/[^a-zA-Z0-9_:]/g, "_").replace(/_{2,}/g, "_");

/** What each kind of instrument is served as (@opentelemetry/exporter-prometheus: no unit suffix). */
const SERIES = new Map<string, (base: string) => string[]>([
  ["createCounter", (b) => [b.endsWith("_total") ? b : `${b}_total`]],
  ["createObservableCounter", (b) => [b.endsWith("_total") ? b : `${b}_total`]],
  ["createHistogram", (b) => [`${b}_count`, `${b}_sum`, `${b}_bucket`]],
  ["createUpDownCounter", (b) => [b]],
  ["createObservableUpDownCounter", (b) => [b]],
  ["createGauge", (b) => [b]],
  ["createObservableGauge", (b) => [b]],
]);

interface Instrument {
  family: string;
  series: string[];
  where: string;
}

/** The strings an expression can be when it is made of literals only; undefined otherwise. */
function literals(node: ts.Expression | undefined): string[] | undefined {
  if (node === undefined) return undefined;
  if (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) return [node.text];
  if (ts.isParenthesizedExpression(node)) return literals(node.expression);
  if (ts.isConditionalExpression(node)) {
    const [a, b] = [literals(node.whenTrue), literals(node.whenFalse)];
    return a === undefined || b === undefined ? undefined : [...a, ...b];
  }
  return undefined;
}

/** Every instrument the source creates, the calls whose name is not a literal, and every attribute key recorded. */
function scanSource(): { instruments: Instrument[]; nonLiteral: string[]; attributes: Set<string> } {
  const instruments: Instrument[] = [];
  const nonLiteral: string[] = [];
  const attributes = new Set<string>();
  for (const file of sourceFiles()) {
    const source = ts.createSourceFile(file, readFileSync(`${ROOT}${file}`, "utf8"), ts.ScriptTarget.Latest, true);
    const visit = (node: ts.Node): void => {
      if (ts.isCallExpression(node) && ts.isPropertyAccessExpression(node.expression)) {
        const method = node.expression.name.text;
        const where = `${file}:${source.getLineAndCharacterOfPosition(node.getStart()).line + 1}`;
        const series = SERIES.get(method);
        if (series !== undefined) {
          // A literal, or a choice between literals (cond ? "a" : "b": both are defined).
          const names = literals(node.arguments[0]);
          if (names === undefined) nonLiteral.push(where);
          for (const name of names ?? []) instruments.push({ family: promName(name), series: series(promName(name)), where });
        }
        // Attributes of a measurement: counter.add(n, {...}), histogram.record(v, {...}), result.observe(v, {...}).
        const attrs = node.arguments[1];
        if ((method === "add" || method === "record" || method === "observe") && attrs !== undefined && ts.isObjectLiteralExpression(attrs)) {
          for (const p of attrs.properties) {
            if ((ts.isPropertyAssignment(p) || ts.isShorthandPropertyAssignment(p)) && (ts.isIdentifier(p.name) || ts.isStringLiteral(p.name))) attributes.add(promName(p.name.text));
          }
        }
      }
      ts.forEachChild(node, visit);
    };
    visit(source);
  }
  return { instruments, nonLiteral, attributes };
}

/** Labels a series carries without the code recording them: the exporter's, Prometheus's and the Prometheus Operator's. */
const SCRAPE_LABELS = new Set(["le", "otel_scope_name", "job", "instance", "namespace", "pod", "service", "endpoint", "container"]);

const PROMQL_KEYWORDS = new Set(["and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left", "group_right", "inf", "nan"]);
const GROUPING = /\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)/g;

/** The metric names of a PromQL expression: identifiers outside strings, label matchers, ranges and grouping lists that are not functions or keywords. */
export function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""')
    .replace(/\{[^}]*\}/g, " ")
    .replace(/\[[^\]]*\]/g, " ")
    .replace(GROUPING, " ")
    .replace(/\$\{?\w+\}?/g, " ");
  const names: string[] = [];
  for (const m of bare.matchAll(/(?<![\w.:])[A-Za-z_:][\w:]*/g)) {
    const rest = bare.slice((m.index ?? 0) + m[0].length);
    if (/^\s*\(/.test(rest) || PROMQL_KEYWORDS.has(m[0].toLowerCase())) continue; // a function, an aggregation or a keyword
    names.push(m[0]);
  }
  return names;
}

/** The label names of a PromQL expression: in matchers and grouping lists. */
export function labelNames(expr: string): string[] {
  const noStrings = expr.replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""');
  const out: string[] = [];
  for (const block of noStrings.matchAll(/\{([^}]*)\}/g)) for (const m of (block[1] ?? "").matchAll(/([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)/g)) out.push(m[1] ?? "");
  for (const list of noStrings.matchAll(GROUPING)) for (const l of (list[1] ?? "").split(",")) if (l.trim() !== "") out.push(l.trim());
  return out;
}

interface Query {
  where: string;
  expr: string;
  /** A label the query names outside the expression (label_values' second argument, legend {{label}}). */
  labels: string[];
}

interface Panel {
  id?: number;
  type?: string;
  title?: string;
  datasource?: { type?: string; uid?: string };
  panels?: Panel[];
  targets?: { expr?: string; legendFormat?: string; datasource?: { uid?: string } }[];
}

interface Dashboard {
  uid?: string;
  title?: string;
  panels?: Panel[];
  templating?: { list?: { name: string; type: string; query?: string | { query?: string }; datasource?: { uid?: string } }[] };
}

const dashboard = JSON.parse(readFileSync(`${ROOT}${DASHBOARD}`, "utf8")) as Dashboard;
const allPanels = (panels: Panel[] = []): Panel[] => panels.flatMap((p) => [p, ...allPanels(p.panels)]);
const panels = allPanels(dashboard.panels);

function queries(): Query[] {
  const out: Query[] = [];
  for (const p of panels) {
    for (const t of p.targets ?? []) {
      const legend = [...(t.legendFormat ?? "").matchAll(/\{\{\s*(\w+)\s*\}\}/g)].map((m) => m[1] ?? "");
      out.push({ where: `panel "${p.title ?? p.id}"`, expr: t.expr ?? "", labels: legend });
    }
  }
  for (const v of dashboard.templating?.list ?? []) {
    if (v.type !== "query") continue;
    const q = typeof v.query === "string" ? v.query : (v.query?.query ?? "");
    const m = /^label_values\((.*),\s*(\w+)\s*\)$/.exec(q.trim());
    if (m === null) assert.fail(`variable ${v.name}: only label_values(<expr>, <label>) queries are checked, got ${q}`);
    out.push({ where: `variable ${v.name}`, expr: m[1] ?? "", labels: [m[2] ?? ""] });
  }
  return out;
}

describe(`Grafana dashboard ${DASHBOARD}`, () => {
  const { instruments, nonLiteral, attributes } = scanSource();
  const defined = new Map(instruments.flatMap((i) => i.series.map((s) => [s, i] as const)));

  it("the source's instruments all have literal names (so this test sees every one)", () => {
    assert.deepEqual(nonLiteral, [], "instruments created with a computed name");
    assert.ok(defined.has("rpc_server_duration_bucket") && defined.has("chat_bus_consumer_lag") && defined.has("nodejs_heap_used_bytes"), "the scan finds the known instruments");
  });

  it("is a dashboard of Prometheus panels on the datasource variable, with unique panel ids", () => {
    assert.equal(dashboard.uid, "chat-mesh");
    assert.ok((dashboard.title ?? "") !== "");
    const ids = panels.map((p) => p.id);
    assert.equal(new Set(ids).size, ids.length, "unique panel ids");
    for (const p of panels.filter((x) => x.type !== "row")) {
      assert.ok((p.targets ?? []).length > 0, `panel "${p.title}" has queries`);
      assert.equal(p.datasource?.uid, "${datasource}", `panel "${p.title}" uses the datasource variable`);
      for (const t of p.targets ?? []) assert.ok((t.expr ?? "").trim() !== "", `panel "${p.title}": every target has an expression`);
    }
  });

  it("queries only metrics the code defines", () => {
    const unknown = queries().flatMap((q) => metricNames(q.expr).filter((n) => !defined.has(n)).map((n) => `${q.where}: ${n}`));
    assert.deepEqual(unknown, [], `metrics not defined in the source (defined: ${[...defined.keys()].sort().join(", ")})`);
  });

  it("uses only labels the code records or the scrape adds", () => {
    const known = new Set([...attributes, ...SCRAPE_LABELS]);
    const unknown = queries().flatMap((q) => [...labelNames(q.expr), ...q.labels].filter((l) => !known.has(l)).map((l) => `${q.where}: ${l}`));
    assert.deepEqual(unknown, [], `labels neither recorded nor added by the scrape (recorded: ${[...attributes].sort().join(", ")})`);
  });

  it("shows every metric the code defines", () => {
    const used = new Set(queries().flatMap((q) => metricNames(q.expr)));
    const absent = instruments.filter((i) => !i.series.some((s) => used.has(s))).map((i) => `${i.family} (${i.where})`);
    assert.deepEqual(absent, [], "metrics defined in the source but on no panel");
  });

  it("the metrics the mesh test requires from /metrics are defined in the code", () => {
    const required = new Set(Object.values(SERVED_METRICS).flatMap((list) => list.map((m) => m.name)));
    assert.deepEqual([...required].filter((n) => !defined.has(n)), []);
  });

  it("reads metric and label names out of PromQL", () => {
    const expr = 'histogram_quantile(0.99, sum by (le, rpc_method) (rate(rpc_server_duration_bucket{namespace=~"$namespace", code!="ok"}[$__rate_interval] offset 5m))) / on() group_left sum(x_total) > 1e3';
    assert.deepEqual(metricNames(expr), ["rpc_server_duration_bucket", "x_total"]);
    assert.deepEqual(labelNames(expr).sort(), ["code", "le", "namespace", "rpc_method"]);
  });
});
