// CoalescedCommits (the Kafka driver's offset commits): what batches resolve within an interval
// goes in one commit, at most one commit is in flight, a trailing commit carries what came late,
// and stop() commits what is left at once; batches resolved while stopping wait for their commit.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { CoalescedCommits } from "../src/bus/commits.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A fake coordinator: records, per commit, the highest offset resolved when it was sent. */
function coordinator(latencyMs: number) {
  let resolvedUpTo = 0;
  const commits: number[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  return {
    commits,
    maxInFlight: () => maxInFlight,
    resolve: (offset: number) => (resolvedUpTo = offset),
    send: async () => {
      commits.push(resolvedUpTo);
      maxInFlight = Math.max(maxInFlight, ++inFlight);
      await sleep(latencyMs);
      inFlight--;
    },
  };
}

describe("coalesced offset commits", () => {
  it("commits the first batch at once and what follows within the interval in one trailing commit", async () => {
    const c = coordinator(5);
    const commits = new CoalescedCommits(100, (err) => assert.fail(String(err)));
    const started = Date.now();
    for (let offset = 1; offset <= 50; offset++) {
      c.resolve(offset);
      await commits.resolved(c.send);
      await sleep(1);
    }
    assert.deepEqual(c.commits.slice(0, 1), [1], "the first resolved offset is committed at once");
    await sleep(300); // the trailing commit is due within 100 ms; room for a busy machine
    assert.ok(c.commits.length <= 2 + Math.ceil((Date.now() - started) / 100), `commits: ${c.commits.length}`);
    assert.equal(c.commits.at(-1), 50, "the last resolved offset is committed within the interval");
    assert.equal(c.maxInFlight(), 1);
  });

  it("stop() commits what is left at once, and a batch resolved while stopping waits for its commit", async () => {
    const c = coordinator(20);
    const commits = new CoalescedCommits(60_000, (err) => assert.fail(String(err)));
    c.resolve(1);
    await commits.resolved(c.send); // committed at once (in flight for 20 ms)
    c.resolve(2);
    await commits.resolved(c.send); // waits for the interval
    assert.deepEqual(c.commits, [1]);
    await commits.stop();
    assert.deepEqual(c.commits, [1, 2], "stop() committed the rest without waiting for the interval");
    c.resolve(3);
    await commits.resolved(c.send);
    assert.deepEqual(c.commits, [1, 2, 3], "resolved while stopping: committed before resolved() returns");
  });

  it("reports a failed commit, and the next commit carries its offsets", async () => {
    const errors: unknown[] = [];
    const sent: number[] = [];
    let resolvedUpTo = 0;
    let fail = true;
    const commits = new CoalescedCommits(10, (err) => errors.push(err));
    const send = async () => {
      sent.push(resolvedUpTo);
      if (fail) {
        fail = false;
        throw new Error("coordinator moved");
      }
    };
    resolvedUpTo = 1;
    await commits.resolved(send);
    await sleep(5);
    resolvedUpTo = 2;
    await commits.resolved(send);
    await sleep(200);
    assert.equal(errors.length, 1);
    assert.deepEqual(sent, [1, 2]);
  });
});
