// Pure sequencing and receipt rules.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ReceiptKind } from "../../../gen/chat/api/v1/enums_pb.js";
import { raise, requested, unreadCount } from "../src/domain/receipts.js";
import { KeyedSerialQueue } from "../../../packages/runtime/src/serial.js";
import { bucketOf, pageRange } from "../src/domain/sequencing.js";

describe("history pages", () => {
  const open = { fromSeq: 1, toSeq: Number.POSITIVE_INFINITY };
  it("pages back from the newest and forward from an anchor", () => {
    assert.deepEqual(pageRange({ anchorSeq: 0, after: false, limit: 10 }, 25, open), { lo: 16, hi: 25, hasMore: true });
    assert.deepEqual(pageRange({ anchorSeq: 16, after: false, limit: 10 }, 25, open), { lo: 6, hi: 15, hasMore: true });
    assert.deepEqual(pageRange({ anchorSeq: 6, after: false, limit: 10 }, 25, open), { lo: 1, hi: 5, hasMore: false });
    assert.deepEqual(pageRange({ anchorSeq: 20, after: true, limit: 10 }, 25, open), { lo: 21, hi: 25, hasMore: false });
    assert.equal(pageRange({ anchorSeq: 25, after: true, limit: 10 }, 25, open), undefined);
  });
  it("stays inside the reader's window (joined late, removed early)", () => {
    assert.deepEqual(pageRange({ anchorSeq: 0, after: false, limit: 50 }, 100, { fromSeq: 40, toSeq: 60 }), { lo: 40, hi: 60, hasMore: false });
    assert.equal(pageRange({ anchorSeq: 0, after: false, limit: 50 }, 100, { fromSeq: 101, toSeq: Number.POSITIVE_INFINITY }), undefined);
  });
  it("buckets seqs 1..1000 together", () => {
    assert.deepEqual([bucketOf(1), bucketOf(1000), bucketOf(1001)], [0, 0, 1]);
  });
});

describe("receipt watermarks", () => {
  it("clamp to the last seq, read implies delivered, never lower", () => {
    assert.deepEqual(requested(ReceiptKind.READ, 50, 10), { deliveredSeq: 10, readSeq: 10 });
    assert.deepEqual(raise({ deliveredSeq: 8, readSeq: 4 }, { deliveredSeq: 2, readSeq: 6 }), { deliveredSeq: 8, readSeq: 6 });
    assert.equal(unreadCount(10, { deliveredSeq: 10, readSeq: 7 }), 3);
  });
});

describe("the per-conversation queue", () => {
  it("runs one conversation's tasks in order, even when one fails", async () => {
    const q = new KeyedSerialQueue();
    const order: number[] = [];
    const slow = (n: number, ms: number) => () => new Promise<number>((r) => setTimeout(() => (order.push(n), r(n)), ms));
    const results = await Promise.allSettled([q.run("c", slow(1, 30)), q.run("c", () => Promise.reject(new Error("x"))), q.run("c", slow(3, 1))]);
    assert.deepEqual(order, [1, 3]);
    assert.deepEqual(results.map((r) => r.status), ["fulfilled", "rejected", "fulfilled"]);
  });
});
