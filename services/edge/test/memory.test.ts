// Giving memory back after a connection surge: when the edge decides to, and that it does return
// old-space pages (a real V8 heap fragmented the way a surge leaves it).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { getHeapSpaceStatistics } from "node:v8";
import { gcFunction, MIN_SLACK_BYTES, MIN_TRIM_SPACING_MS, shouldTrim, startMemoryTrim, type TrimCheck } from "../src/memory.js";

const MB = 2 ** 20;
const settledIdle: TrimCheck = { committed: 350 * MB, used: 120 * MB, connections: 16_000, connectionsBefore: 15_990, loopBusy: 0.05, sinceLastTrimMs: Infinity };

describe("memory trim", () => {
  it("trims a settled, idle edge whose heap is mostly empty", () => {
    assert.equal(shouldTrim(settledIdle), true);
  });

  it("waits while clients still arrive or leave in numbers", () => {
    assert.equal(shouldTrim({ ...settledIdle, connectionsBefore: 15_000 }), false);
    assert.equal(shouldTrim({ ...settledIdle, connections: 500, connectionsBefore: 0 }), false);
  });

  it("leaves a busy event loop, a small slack and a recent trim alone", () => {
    assert.equal(shouldTrim({ ...settledIdle, loopBusy: 0.7 }), false);
    assert.equal(shouldTrim({ ...settledIdle, committed: 94 * MB + MIN_SLACK_BYTES - 1, used: 94 * MB }), false);
    assert.equal(shouldTrim({ ...settledIdle, committed: 900 * MB, used: 700 * MB }), false);
    assert.equal(shouldTrim({ ...settledIdle, sinceLastTrimMs: MIN_TRIM_SPACING_MS - 1 }), false);
  });

  it("returns the old space a surge left behind", async () => {
    const oldSpace = () => getHeapSpaceStatistics().find((s) => s.space_name === "old_space")?.space_size ?? 0;
    // The edge is never idle (pings, refreshes): V8 does not reduce memory by itself meanwhile.
    let allocated = 0;
    const busy = setInterval(() => (allocated += Array.from({ length: 1000 }, (_, i) => ({ i })).length), 2);
    try {
      // Long-lived objects interleaved with three times as many that are promoted and then die: a
      // regular mark-sweep frees them but leaves pages a quarter full (V8 compacts a few of them
      // itself, so rounds go on until the slack is there).
      const space = () => getHeapSpaceStatistics().find((s) => s.space_name === "old_space") ?? { space_size: 0, space_used_size: 0 };
      const slack = () => space().space_size - space().space_used_size;
      const kept: object[] = [];
      for (let round = 0; round < 4 && (slack() < 2 * MIN_SLACK_BYTES || slack() < space().space_used_size); round++) {
        let surge: object[] = [];
        for (let i = 0; i < 2_000_000; i++) {
          const o = { i, tag: `client-${i}`, values: [i, i + 1, i + 2] };
          if (i % 4 === 0) kept.push(o);
          else surge.push(o);
        }
        surge = [];
        gcFunction()({ type: "major", flavor: "regular" });
        assert.equal(surge.length, 0);
      }
      const before = oldSpace();
      assert.ok(slack() >= 2 * MIN_SLACK_BYTES, `old space ${before} bytes, ${slack()} of them free: no slack to give back`);
      const lines: object[] = [];
      const logger = { info: (o: object) => lines.push(o) } as unknown as Parameters<typeof startMemoryTrim>[0]["logger"];
      const stop = startMemoryTrim({ everyMs: 100, connections: () => kept.length, logger });
      try {
        for (let t = 0; t < 50 && lines.length === 0; t++) await new Promise((r) => setTimeout(r, 100));
      } finally {
        stop();
      }
      assert.ok(lines.length >= 1, `no trim happened (old space ${before} bytes, ${kept.length} objects kept)`);
      assert.ok(oldSpace() < before * 0.8, `old space ${before} -> ${oldSpace()} bytes`);
      assert.ok(allocated > 0);
    } finally {
      clearInterval(busy);
    }
  });
});
