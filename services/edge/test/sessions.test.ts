// The edge's admission bound (EDGE_MAX_CONNECTING): a client holds its place from the upgrade on,
// through its asynchronous authentication, until its session is opened, so a burst that arrives
// all at once cannot pass the check together. (The mesh test "a flood of connections" shows it end
// to end; the connection and presence clients are never called here.)
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ConnectionTable } from "../src/domain/connections.js";
import { SessionManager } from "../src/sessions.js";
import { createLogger } from "../../../packages/runtime/src/log.js";

const manager = (maxRegistering: number) =>
  new SessionManager({ edgeId: "e1", table: new ConnectionTable(), connection: {} as never, presence: {} as never, refreshMs: 3_600_000, maxRegistering, logger: createLogger("test") });

describe("edge admission", () => {
  it("holds a place for each client admitted and not yet opened, and turns the next ones away", () => {
    const sessions = manager(3);
    assert.equal(sessions.reserve(), undefined, "no clients before accept()");
    sessions.accept();
    const places = [sessions.reserve(), sessions.reserve(), sessions.reserve()];
    assert.ok(places.every((p) => p !== undefined));
    assert.equal(sessions.reserve(), undefined, "a fourth arrival before any is opened is turned away");
    assert.equal(sessions.admits(), false);
    places[0]?.();
    places[0]?.(); // a second call gives nothing back twice
    assert.notEqual(sessions.reserve(), undefined, "a place given back is free again");
    assert.equal(sessions.reserve(), undefined);
  });
});
