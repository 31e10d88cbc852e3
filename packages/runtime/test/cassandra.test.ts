// The Cassandra connector against the real server (CASSANDRA_CONTACT_POINTS, the local
// infrastructure's 127.0.0.1:19042 by default; fails, naming it, when it is not up).
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import net from "node:net";
import { after, before, describe, it } from "node:test";
import { migrateCql, openCassandra, type CassandraSession } from "../src/cassandra.js";

const contactPoints = (process.env["CASSANDRA_CONTACT_POINTS"] ?? "127.0.0.1:19042").split(",");
const localDataCenter = process.env["CASSANDRA_LOCAL_DC"] ?? "datacenter1";

describe("cassandra", () => {
  const keyspace = `runtime_test_${randomBytes(4).toString("hex")}`;
  const open = () => openCassandra({ contactPoints, localDataCenter, keyspace });
  let session: CassandraSession;
  before(async () => {
    session = await open();
  });
  after(async () => {
    await session?.client.execute(`DROP KEYSPACE IF EXISTS ${keyspace}`);
    await session?.close();
  });

  it("creates its keyspace, connects to it, and answers its health check", async () => {
    await session.health();
    assert.equal(session.client.keyspace, keyspace);
  });

  it("applies each migration once, also when two processes migrate at once", async () => {
    const migrations = [
      { id: "001", cql: ["CREATE TABLE IF NOT EXISTS notes (id text PRIMARY KEY, body text, n bigint)"] },
      { id: "002", cql: ["CREATE TABLE IF NOT EXISTS tags (note text, tag text, PRIMARY KEY ((note), tag))", "ALTER TABLE notes ADD at timestamp"] },
    ];
    const other = await open();
    try {
      const runs = await Promise.all([migrateCql(session, "runtime", migrations), migrateCql(other, "runtime", migrations)]);
      assert.deepEqual(runs.flat().sort(), ["001", "002"]);
      assert.deepEqual(await migrateCql(session, "runtime", migrations), []);
    } finally {
      await other.close();
    }
    // Prepared statements by default: typed parameters without hints.
    const at = new Date("2026-01-02T03:04:05.678Z");
    await session.client.execute("INSERT INTO notes (id, body, n, at) VALUES (?, ?, ?, ?)", ["a", "hello", 42, at]);
    const row = (await session.client.execute("SELECT body, n, at FROM notes WHERE id = ?", ["a"])).first();
    assert.equal(row?.["body"], "hello");
    assert.equal(String(row?.["n"]), "42");
    assert.equal((row?.["at"] as Date).toISOString(), at.toISOString());
  });

  it("names the server it cannot reach", async () => {
    await assert.rejects(openCassandra({ contactPoints: ["127.0.0.1:1"], localDataCenter, keyspace }), /^Error: Cassandra at 127\.0\.0\.1:1 .*is not reachable/);
  });

  it("connects to a server that starts listening shortly after a first refusal", async () => {
    // A proxy to the real server on a port that refuses connections for its first 700 ms.
    const [host, port] = [contactPoints[0].replace(/:\d+$/, ""), Number(/:(\d+)$/.exec(contactPoints[0])?.[1] ?? 9042)];
    const free = net.createServer();
    await new Promise<void>((r) => free.listen(0, "127.0.0.1", r));
    const proxyPort = (free.address() as net.AddressInfo).port;
    await new Promise((r) => free.close(r));
    const sockets = new Set<net.Socket>();
    const proxy = net.createServer((client) => {
      const server = net.connect(port, host);
      for (const s of [client, server]) {
        sockets.add(s);
        s.on("error", () => s.destroy());
      }
      client.pipe(server).pipe(client);
    });
    const late = setTimeout(() => proxy.listen(proxyPort, "127.0.0.1"), 700);
    try {
      const session = await openCassandra({ contactPoints: [`127.0.0.1:${proxyPort}`], localDataCenter, keyspace });
      await session.health();
      await session.close();
    } finally {
      clearTimeout(late);
      for (const s of sockets) s.destroy();
      await new Promise((r) => proxy.close(r));
    }
  });

  it("refuses a keyspace name CQL would not take", async () => {
    await assert.rejects(openCassandra({ contactPoints, localDataCenter, keyspace: "Bad-Name" }), /invalid Cassandra keyspace name "Bad-Name"/);
  });
});
