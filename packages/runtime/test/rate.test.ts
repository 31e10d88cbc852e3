// The token bucket behind the WebSocket flood limit and the typing rate limit.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { TokenBucket } from "../src/rate.js";

describe("token bucket", () => {
  it("allows the burst, then the rate, and says when it is full again", () => {
    let now = 0;
    const bucket = new TokenBucket(10, 5, () => now);
    assert.equal(bucket.full(), true);
    assert.equal(Array.from({ length: 8 }, () => bucket.take()).filter(Boolean).length, 5);
    assert.equal(bucket.full(), false);
    now += 500;
    assert.equal(Array.from({ length: 8 }, () => bucket.take()).filter(Boolean).length, 5);
    now += 499;
    assert.equal(bucket.full(), false);
    now += 1;
    assert.equal(bucket.full(), true);
  });
});
