// Batching helpers: KeyedBatchQueue (per key one batch at a time; what arrives meanwhile goes
// together next; with gather, an idle key's first batch waits for the end of the turn; with a
// linger, for the linger, and batches start at least the linger apart) and
// TickBatcher (what arrives in one turn of the event loop goes together, batches run at once, or
// at most maxInFlight at once with the items that wait going together next, and at most maxWaiting
// of those);
// both answer each item on its own.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Code, ConnectError, retryAfterMs } from "../src/errors.js";
import { KeyedBatchQueue, TickBatcher } from "../src/serial.js";

describe("batching", () => {
  it("TickBatcher: one batch per turn of the event loop, split at the bound, each item answered on its own", async () => {
    const batches: number[][] = [];
    const b = new TickBatcher<number, string>(async (items) => {
      batches.push(items);
      return items.map((n) => (n % 5 === 0 ? new Error(`no ${n}`) : `ok ${n}`));
    }, 4);
    const first = Array.from({ length: 6 }, (_, i) => b.run(i + 1));
    const settled = await Promise.allSettled(first);
    assert.deepEqual(batches, [[1, 2, 3, 4], [5, 6]]);
    assert.deepEqual(settled.map((s) => (s.status === "fulfilled" ? s.value : (s.reason as Error).message)), ["ok 1", "ok 2", "ok 3", "ok 4", "no 5", "ok 6"]);
    assert.equal(await b.run(7), "ok 7");
    assert.deepEqual(batches.at(-1), [7], "a later turn is a batch of its own");
  });

  it("TickBatcher: with a budget, a batch stops before the item that would pass it, and a heavier item goes alone", async () => {
    const batches: number[][] = [];
    const b = new TickBatcher<number, number>(
      async (items) => {
        batches.push(items);
        return items;
      },
      100,
      Number.POSITIVE_INFINITY,
      Number.POSITIVE_INFINITY,
      { weight: (n) => n, max: 10 },
    );
    // Three texts near the limit (AppendMany's case: each alone fits, two together do not), then small ones.
    await Promise.all([6, 6, 6, 2, 2, 30, 1].map((n) => b.run(n)));
    assert.deepEqual(batches, [[6], [6], [6, 2, 2], [30], [1]]);
  });

  it("TickBatcher: batches do not wait for each other, and a failed batch fails only its items", async () => {
    let release: () => void = () => undefined;
    const b = new TickBatcher<number, number>(async (items) => {
      if (items[0] === 1) await new Promise<void>((r) => (release = r));
      if (items[0] === 3) throw new Error("batch failed");
      return items;
    });
    const slow = b.run(1);
    await new Promise((r) => setImmediate(r));
    assert.equal(await b.run(2), 2, "the second turn's batch is answered while the first is still running");
    await assert.rejects(b.run(3), /batch failed/);
    release();
    assert.equal(await slow, 1);
  });

  it("TickBatcher with maxInFlight: items that arrive while the bound is reached go together in the next batch", async () => {
    const batches: number[][] = [];
    const releases: (() => void)[] = [];
    const b = new TickBatcher<number, number>(
      async (items) => {
        batches.push(items);
        await new Promise<void>((r) => releases.push(r));
        if (items.includes(2)) throw new Error("batch failed");
        return items;
      },
      100,
      1,
    );
    const turn = () => new Promise((r) => setImmediate(r));
    const first = b.run(1);
    await turn();
    const later = [b.run(2), b.run(3)];
    await turn();
    later.push(b.run(4));
    await turn();
    assert.deepEqual(batches, [[1]], "nothing else starts while one batch is in flight");
    releases.shift()?.();
    assert.equal(await first, 1);
    await turn();
    assert.deepEqual(batches, [[1], [2, 3, 4]], "the items of three turns went in one batch");
    releases.shift()?.();
    for (const p of later) await assert.rejects(p, /batch failed/);
    const after = b.run(5);
    await turn();
    releases.shift()?.();
    assert.equal(await after, 5, "a failed batch frees its place");
  });

  it("TickBatcher with maxWaiting: past the bound an item is refused at once with a retry hint", async () => {
    let release: () => void = () => undefined;
    const b = new TickBatcher<number, number>(
      async (items) => {
        if (items[0] === 1) await new Promise<void>((r) => (release = r));
        return items;
      },
      100,
      1,
      2,
    );
    const first = b.run(1);
    await new Promise((r) => setImmediate(r));
    const waiting = [b.run(2), b.run(3)];
    const refused = await Promise.race([b.run(4).then(() => "answered", (err: unknown) => err), new Promise((r) => setTimeout(() => r("still waiting"), 100))]);
    assert.ok(refused instanceof ConnectError, `a third waiting item was refused at once, not ${String(refused)}`);
    assert.equal(refused.code, Code.ResourceExhausted);
    assert.ok(retryAfterMs(refused) > 0, "the refusal carries a retry hint");
    release();
    assert.deepEqual(await Promise.all([first, ...waiting]), [1, 2, 3], "the waiting ones still go");
  });

  it("KeyedBatchQueue: per key one batch at a time, what arrives meanwhile goes together next", async () => {
    const batches: string[][] = [];
    let release: () => void = () => undefined;
    const q = new KeyedBatchQueue<string, string>(async (key, items) => {
      batches.push([key, ...items]);
      if (items[0] === "a1") await new Promise<void>((r) => (release = r));
      return items;
    });
    const a1 = q.run("a", "a1");
    const rest = [q.run("a", "a2"), q.run("a", "a3"), q.run("b", "b1")];
    await new Promise((r) => setImmediate(r));
    release();
    assert.deepEqual(await Promise.all([a1, ...rest]), ["a1", "a2", "a3", "b1"]);
    assert.deepEqual(batches, [["a", "a1"], ["b", "b1"], ["a", "a2", "a3"]]);
  });

  it("KeyedBatchQueue with gather: an idle key's first batch takes what the rest of the turn issues", async () => {
    const batches: string[][] = [];
    const q = new KeyedBatchQueue<string, string>(async (_, items) => {
      batches.push(items);
      return items;
    }, { gather: true });
    const first = q.run("k", "x1");
    // Issued later in the same turn, after a few promise hops (as a caller's next write would be).
    const later = Promise.resolve()
      .then(() => undefined)
      .then(() => q.run("k", "x2"));
    assert.deepEqual(await Promise.all([first, later]), ["x1", "x2"]);
    assert.deepEqual(batches, [["x1", "x2"]]);
    assert.equal(await q.run("k", "x3"), "x3");
    assert.deepEqual(batches.at(-1), ["x3"], "a later turn is a batch of its own");
  });

  it("KeyedBatchQueue with a budget: a batch stops before the item that would pass it; a heavier item goes alone", async () => {
    const batches: string[][] = [];
    const q = new KeyedBatchQueue<string, string>(
      async (_, items) => {
        batches.push(items);
        return items;
      },
      { gather: true, budget: { weight: (item) => item.length, max: 6 } },
    );
    const items = ["aa", "bb", "cc", "ddd", "eeeeeeeeee", "f", "g"];
    assert.deepEqual(await Promise.all(items.map((i) => q.run("k", i))), items);
    assert.deepEqual(batches, [["aa", "bb", "cc"], ["ddd"], ["eeeeeeeeee"], ["f", "g"]]);
  });

  it("KeyedBatchQueue with a linger: an idle key's first batch waits for it, the next ones start at least that far apart", async () => {
    const lingerMs = 40;
    const starts: { at: number; items: number[] }[] = [];
    const q = new KeyedBatchQueue<number, number>(async (_, items) => {
      starts.push({ at: performance.now(), items });
      return items;
    }, { lingerMs });
    const t0 = performance.now();
    const runs: Promise<number>[] = [q.run("k", 1)];
    // Items issued over 100 ms, one every 10 ms: a batch per linger, not one per item.
    for (let i = 2; i <= 10; i++) {
      await new Promise((r) => setTimeout(r, 10));
      runs.push(q.run("k", i));
    }
    const issuedFor = performance.now() - t0;
    assert.deepEqual(await Promise.all(runs), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    assert.ok((starts[0]?.at ?? 0) - t0 >= lingerMs - 1, `the first batch started ${(starts[0]?.at ?? 0) - t0} ms after its item`);
    // At most one batch per linger while items were issued (a slow machine issues them more slowly), and the last one's.
    assert.ok(starts.length <= Math.ceil(issuedFor / lingerMs) + 1 && starts.length < 10, `${starts.length} batches for 10 items issued over ${issuedFor} ms`);
    for (let i = 1; i < starts.length; i++) assert.ok((starts[i]?.at ?? 0) - (starts[i - 1]?.at ?? 0) >= lingerMs - 1, `batches ${i - 1} and ${i} started ${(starts[i]?.at ?? 0) - (starts[i - 1]?.at ?? 0)} ms apart`);
    assert.deepEqual(starts.flatMap((s) => s.items), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], "in arrival order");
    // Without a linger each item that finds the key idle goes at once: ten batches.
    const eager: number[][] = [];
    const plain = new KeyedBatchQueue<number, number>(async (_, items) => {
      eager.push(items);
      return items;
    });
    for (let i = 1; i <= 10; i++) {
      await plain.run("k", i);
    }
    assert.equal(eager.length, 10);
  });
});
