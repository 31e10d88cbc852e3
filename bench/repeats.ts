// `make bench --repeat N`: the direct scenario N times, each on a mesh of its own, summed up as
// medians with the lowest and highest value. On a shared machine one run's p99 can be two or three
// times another's with nothing changed, and a run's latency tends to stay where its mesh started,
// so a number worth quoting is a median over meshes.

/** The median (the mean of the middle two for an even count) and the extremes of some runs' values. */
export interface Spread {
  median: number;
  min: number;
  max: number;
  /** How many runs had the value. */
  runs: number;
}

export function spread(values: number[]): Spread {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return { median: Number.NaN, min: Number.NaN, max: Number.NaN, runs: 0 };
  const mid = Math.floor(v.length / 2);
  const median = v.length % 2 === 1 ? (v[mid] ?? Number.NaN) : ((v[mid - 1] ?? Number.NaN) + (v[mid] ?? Number.NaN)) / 2;
  return { median: Math.round(median * 1000) / 1000, min: v[0] ?? Number.NaN, max: v.at(-1) ?? Number.NaN, runs: v.length };
}

/** What the summary reads of each repeat (bench/run.ts RunResult and DirectResult, in part). */
export interface RepeatRun {
  main: {
    offeredRate: number;
    latencyMs: { p50: number; p90: number; p99: number; p999: number };
    cpuMsPerMessage: number;
    machineCpu: { busyPercent: number; stealPercent: number } | undefined;
  };
  sweep: { offeredRate: number; latencyMs: { p99: number } }[];
  highestRateWithP99Under200ms: number;
}

export interface RepeatSummary {
  offeredRate: number;
  main: { p50: Spread; p90: Spread; p99: Spread; p999: Spread; cpuMsPerMessage: Spread; busyPercent: Spread; stealPercent: Spread };
  /** Each swept rate's p99 over the repeats that reached it (a sweep stops at its first rate past the bound). */
  sweepP99: Record<string, Spread>;
  highestRateWithP99Under200ms: Spread;
}

export function summarizeRepeats(runs: RepeatRun[]): RepeatSummary {
  const of = (f: (r: RepeatRun) => number | undefined) => spread(runs.map((r) => f(r) ?? Number.NaN));
  const rates = [...new Set(runs.flatMap((r) => r.sweep.map((s) => s.offeredRate)))].sort((a, b) => a - b);
  return {
    offeredRate: runs[0]?.main.offeredRate ?? 0,
    main: {
      p50: of((r) => r.main.latencyMs.p50),
      p90: of((r) => r.main.latencyMs.p90),
      p99: of((r) => r.main.latencyMs.p99),
      p999: of((r) => r.main.latencyMs.p999),
      cpuMsPerMessage: of((r) => r.main.cpuMsPerMessage),
      busyPercent: of((r) => r.main.machineCpu?.busyPercent),
      stealPercent: of((r) => r.main.machineCpu?.stealPercent),
    },
    sweepP99: Object.fromEntries(rates.map((rate) => [String(rate), of((r) => r.sweep.find((s) => s.offeredRate === rate)?.latencyMs.p99)])),
    highestRateWithP99Under200ms: of((r) => r.highestRateWithP99Under200ms),
  };
}
