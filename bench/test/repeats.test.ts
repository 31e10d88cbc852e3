// `--repeat`'s summary: medians with the extremes, a sweep's rates counted only where a repeat
// reached them.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { spread, summarizeRepeats, type RepeatRun } from "../repeats.js";

const run = (p99: number, sweep: [number, number][], best: number, busy?: number): RepeatRun => ({
  main: { offeredRate: 1000, latencyMs: { p50: p99 / 4, p90: p99 / 2, p99, p999: p99 * 1.5 }, cpuMsPerMessage: 1.5, machineCpu: busy === undefined ? undefined : { busyPercent: busy, stealPercent: 1 } },
  sweep: sweep.map(([offeredRate, p]) => ({ offeredRate, latencyMs: { p99: p } })),
  highestRateWithP99Under200ms: best,
});

describe("repeat summary", () => {
  it("takes the middle value of an odd count and the mean of the middle two of an even one", () => {
    assert.deepEqual(spread([300, 100, 200]), { median: 200, min: 100, max: 300, runs: 3 });
    assert.deepEqual(spread([4, 1, 3, 2]), { median: 2.5, min: 1, max: 4, runs: 4 });
    assert.deepEqual(spread([Number.NaN, 5]), { median: 5, min: 5, max: 5, runs: 1 });
    assert.equal(spread([]).runs, 0);
  });

  it("sums up the main runs, each swept rate over the repeats that reached it, and the highest passing rate", () => {
    const s = summarizeRepeats([run(100, [[600, 60], [800, 250]], 600, 80), run(400, [[600, 80], [800, 120], [1000, 300]], 800, 90), run(150, [[600, 70], [800, 150], [1000, 190]], 1000)]);
    assert.equal(s.offeredRate, 1000);
    assert.deepEqual(s.main.p99, { median: 150, min: 100, max: 400, runs: 3 });
    assert.equal(s.main.p50.median, 37.5);
    // The third run has no machine reading: the busy share is of the other two.
    assert.deepEqual(s.main.busyPercent, { median: 85, min: 80, max: 90, runs: 2 });
    assert.deepEqual(Object.keys(s.sweepP99), ["600", "800", "1000"]);
    assert.deepEqual(s.sweepP99["600"], { median: 70, min: 60, max: 80, runs: 3 });
    assert.deepEqual(s.sweepP99["1000"], { median: 245, min: 190, max: 300, runs: 2 });
    assert.deepEqual(s.highestRateWithP99Under200ms, { median: 800, min: 600, max: 1000, runs: 3 });
  });
});
