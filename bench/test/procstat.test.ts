// The benchmark's machine-wide CPU reading (/proc/stat): a busy interval shows as busy time, and
// the shares stay within the machine's time. Its processes' waits for a core (schedstat): more
// busy processes than cores wait, and a report line names the wait.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { spawn } from "node:child_process";
import { cpus } from "node:os";
import { setTimeout as sleep } from "node:timers/promises";
import { cpuSecondsOf, machineNote, machineUsage, processLine, processReports, sampleAll, usage } from "../procstat.js";

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

describe("waits for a core", () => {
  it("counts the threads of each interval: one that ended takes its waits with it, not a negative wait", () => {
    const proc = (waits: [string, number][], mainWait: number) => ({ cpuSeconds: 1, rssBytes: 0, sched: { waitSeconds: new Map(waits), main: { cpuSeconds: 1, waitSeconds: mainWait } } });
    // Thread 11 waited 5 s in all and ended; 12 waited 0.25 s more; 13 started and waited 0.5 s;
    // 14's id was reused by a new thread that waited 0.1 s.
    const before = { processes: { jvm: proc([["10", 1], ["11", 5], ["12", 2], ["14", 3]], 1) }, machine: undefined };
    const after = { processes: { jvm: proc([["10", 1.25], ["12", 2.25], ["13", 0.5], ["14", 0.1]], 1.25) }, machine: undefined };
    const w = usage(before, after, 1)["jvm"]?.coreWait;
    assert.deepEqual(w, { waitPercent: 110, main: { cpuPercent: 0, waitPercent: 25 } });
  });

  it("shows processes that outnumber the cores waiting, most of it their main thread's", async () => {
    // Twice as many single-threaded spinning processes as cores: together they can run at most
    // `cores` seconds a second, so about as long again is spent waiting.
    const cores = cpus().length;
    const spin = "const until = Date.now() + 2500; while (Date.now() < until);";
    const children = Array.from({ length: 2 * cores }, () => spawn(process.execPath, ["-e", spin], { stdio: "ignore" }));
    try {
      const pids = Object.fromEntries(children.map((c, i) => [`spin-${i}`, c.pid ?? 0]));
      await sleep(600); // past their start-up
      const before = sampleAll(pids);
      await sleep(1000);
      const after = sampleAll(pids);
      const used = usage(before, after, 1);
      const waits = Object.values(used).map((u) => u.coreWait);
      assert.equal(waits.length, children.length, "a spinning process was not sampled");
      let ran = 0;
      let waited = 0;
      for (const w of waits) {
        assert.ok(w !== undefined, "no schedstat reading");
        ran += w.main.cpuPercent;
        waited += w.main.waitPercent;
        assert.ok(w.waitPercent >= w.main.waitPercent - 0.1, `all threads waited ${w.waitPercent}%, the main one ${w.main.waitPercent}%`);
      }
      // Ran: at most the cores' time; waited: at least half of what they ran (a machine busy with
      // anything else only adds to it).
      assert.ok(ran <= 100 * cores + 5, `ran ${ran}% on ${cores} cores`);
      assert.ok(ran >= 30 * cores, `ran only ${ran}% on ${cores} cores`);
      assert.ok(waited >= ran / 2, `waited ${waited}% while running ${ran}%`);
      const [name, report] = Object.entries(processReports(used))[0] ?? [];
      assert.ok(name !== undefined && report !== undefined);
      assert.match(processLine(name, report), /^  spin-0 +cpu +[\d.]+%  rss [\d.]+ MB  waited for a core [\d.]+% \(main thread ran [\d.]+%, waited [\d.]+%\)$/);
    } finally {
      for (const c of children) c.kill();
    }
  });

  it("leaves the wait out where there is none to compare (a process restarted, or a group)", () => {
    const line = processLine("postgres", { cpuPercent: 1.5, rssMB: 90 });
    assert.equal(line, "  postgres       cpu    1.5%  rss 90 MB");
  });
});
