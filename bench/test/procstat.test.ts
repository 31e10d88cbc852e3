// The benchmark's machine-wide CPU reading (/proc/stat): a busy interval shows as busy time, and
// the shares stay within the machine's time.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { cpus } from "node:os";
import { cpuSecondsOf, machineNote, machineUsage, sampleAll } from "../procstat.js";

describe("machine CPU", () => {
  it("counts a busy interval as busy, within all cores' time", () => {
    const before = sampleAll({ self: process.pid });
    const until = performance.now() + 300;
    while (performance.now() < until); // one core busy for 300 ms
    const after = sampleAll({ self: process.pid });
    const m = machineUsage(before, after);
    assert.ok(m !== undefined, "no reading from /proc/stat");
    // One core of the machine's busy throughout: its share shows, less what the clock's 10 ms
    // ticks and a hypervisor's steal may take from it.
    assert.ok(m.busyPercent >= (0.4 * 100) / cpus().length, `busy ${m.busyPercent}% of ${cpus().length} cores`);
    assert.ok(m.busyPercent + m.stealPercent <= 100, `busy ${m.busyPercent}% + steal ${m.stealPercent}%`);
    assert.match(machineNote(m), /^machine busy [\d.]+% steal [\d.]+% of all cores$/);
    assert.equal(machineNote(undefined), "machine not measured");
  });

  it("gives no reading for snapshots without the machine or in the wrong order", () => {
    const a = sampleAll({});
    assert.equal(machineUsage({ processes: {}, machine: undefined }, a), undefined);
    assert.equal(machineUsage(a, a), undefined);
  });
});

describe("processes' CPU", () => {
  it("adds up the CPU seconds of the processes chosen, all by default", () => {
    const used = { loadgen: { cpuSeconds: 2 }, edge: { cpuSeconds: 1.5 }, "edge-1": { cpuSeconds: 0.5 }, cassandra: { cpuSeconds: 3 } };
    assert.equal(cpuSecondsOf(used), 7);
    assert.equal(cpuSecondsOf(used, (name) => name !== "loadgen"), 5);
    assert.equal(cpuSecondsOf(used, (name) => name.startsWith("edge")), 2);
    assert.equal(cpuSecondsOf({}), 0);
  });
});
