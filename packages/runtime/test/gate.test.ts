// The gate: bounded concurrency, arrival order, refusal past the waiting line, callers who give up.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Code, retryAfterMs, type ConnectError } from "../src/errors.js";
import { Gate } from "../src/serial.js";

describe("gate", () => {
  it("runs at most N at once, the rest in arrival order, refuses past the line, and drops those who gave up", async () => {
    const gate = new Gate(2, 3, "work");
    let running = 0;
    let most = 0;
    const order: number[] = [];
    const releases: (() => void)[] = [];
    const task = (n: number) => async () => {
      running++;
      most = Math.max(most, running);
      order.push(n);
      await new Promise<void>((r) => releases.push(r));
      running--;
      return n;
    };
    const gaveUp = new AbortController();
    const runs = [gate.run(task(1)), gate.run(task(2)), gate.run(task(3)), gate.run(task(4), gaveUp.signal), gate.run(task(5))];
    await assert.rejects(gate.run(task(6)), (err: ConnectError) => err.code === Code.ResourceExhausted, "past the waiting line");
    gaveUp.abort(new Error("deadline"));
    await assert.rejects(runs[3] ?? assert.fail(), /deadline/);
    while (order.length < 4) {
      await new Promise((r) => setTimeout(r, 1));
      releases.shift()?.();
    }
    while (releases.length > 0) releases.shift()?.();
    assert.deepEqual(await Promise.all([runs[0], runs[1], runs[2], runs[4]]), [1, 2, 3, 5]);
    assert.deepEqual(order, [1, 2, 3, 5], "in arrival order; the one who gave up never ran");
    assert.equal(most, 2);
  });

  it("tells a refused caller when to come back: about when the line ahead is gone", async () => {
    const gate = new Gate(1, 20, "work");
    // The pace: tasks of about 5 ms each, one at a time.
    for (let i = 0; i < 20; i++) await gate.run(() => new Promise((r) => setTimeout(r, 5)));
    let release = () => {};
    const busy = gate.run(() => new Promise<void>((r) => (release = r)));
    const ahead = Array.from({ length: 20 }, () => gate.run(async () => "ran"));
    const refused = await gate.run(async () => "late").then(
      () => assert.fail("not refused"),
      (err: ConnectError) => err,
    );
    assert.equal(refused.code, Code.ResourceExhausted);
    const hint = retryAfterMs(refused);
    assert.ok(hint >= 250 && hint <= 750, `retry hint ${hint} ms (20 ahead x 5 ms, at least 500 ms, randomised x0.5-1.5)`);
    release();
    await busy;
    assert.deepEqual(new Set(await Promise.all(ahead)), new Set(["ran"]));
  });
});
