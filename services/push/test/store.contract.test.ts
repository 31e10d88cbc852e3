// One contract for the push store, run against both drivers: PGlite and real PostgreSQL.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, it } from "node:test";
import { PushPlatform } from "../../../gen/chat/api/v1/enums_pb.js";
import { migrateSql } from "../../../packages/runtime/src/sql/migrate.js";
import { sqlDrivers } from "../../../tests/support/sql.js";
import { newTargetId } from "../src/domain/targets.js";
import { migrations } from "../src/store/migrations.js";
import { createSqlPushStore } from "../src/store/sql.js";

for (const driver of sqlDrivers("push-contract")) {
  describe(`push store contract: ${driver.name}`, () => {
    const user = `u-${randomBytes(4).toString("hex")}`;
    const open = async () => {
      const sql = await driver.open();
      await migrateSql(sql, "push", migrations);
      return createSqlPushStore(sql);
    };
    const target = (deviceId: string, platform = PushPlatform.FCM, token = "tok") => ({ targetId: newTargetId(), userId: user, deviceId, platform, details: { token } });

    it("upserts one target per device and platform, and caps targets per user, even concurrently", async () => {
      const store = await open();
      const first = await store.upsertTarget(target("d1", PushPlatform.FCM, "a"), 3);
      const again = await store.upsertTarget(target("d1", PushPlatform.FCM, "b"), 3);
      assert.ok(first !== "limit" && again !== "limit");
      assert.equal(again.targetId, first.targetId);
      assert.deepEqual(again.details, { token: "b" });
      const results = await Promise.all(["d2", "d3", "d4", "d5"].map((d) => store.upsertTarget(target(d), 3)));
      assert.equal(results.filter((r) => r === "limit").length, 2);
      assert.equal((await store.listTargets(user)).length, 3);
      await store.close();
    });

    it("removes only the user's own targets", async () => {
      const store = await open();
      const [t] = await store.listTargets(user);
      assert.equal(await store.removeTarget("someone-else", t?.targetId ?? ""), false);
      assert.equal(await store.removeTarget(user, t?.targetId ?? ""), true);
      assert.equal(await store.removeTarget(user, t?.targetId ?? ""), false);
      await store.close();
    });

    it("stores mutes and preview settings", async () => {
      const store = await open();
      const until = new Date(Date.now() + 3_600_000);
      await store.setMute(user, "c1", until);
      assert.equal((await store.mutedUntil(user, "c1"))?.toISOString(), until.toISOString());
      await store.setMute(user, "c1", undefined);
      assert.equal(await store.mutedUntil(user, "c1"), undefined);
      assert.equal(await store.showPreviews(user), true);
      await store.setShowPreviews(user, false);
      assert.equal(await store.showPreviews(user), false);
      await store.close();
    });

    it("removes a gone target only while its registration is unchanged", async () => {
      const store = await open();
      const other = `${user}-gone`;
      const t = await store.upsertTarget({ targetId: newTargetId(), userId: other, deviceId: "d", platform: PushPlatform.FCM, details: { token: "old" } }, 3);
      assert.ok(t !== "limit");
      const renewed = await store.upsertTarget({ targetId: newTargetId(), userId: other, deviceId: "d", platform: PushPlatform.FCM, details: { token: "new" } }, 3);
      assert.ok(renewed !== "limit");
      assert.equal(await store.removeGoneTarget({ targetId: t.targetId, details: { token: "old" } }), false, "re-registered since");
      assert.equal(await store.removeGoneTarget(renewed), true);
      assert.deepEqual(await store.listTargets(other), []);
      await store.close();
    });

    it("claims a notification once: done stays done, a live claim is held, a dead sender's claim is taken over", async () => {
      const store = await open();
      const key = { messageId: `m-${user}`, targetId: "t1" };
      assert.equal(await store.claimSend(key, "a", 60_000), "claimed");
      assert.equal(await store.claimSend(key, "a", 60_000), "claimed", "the same owner again (a batch retried)");
      assert.equal(await store.claimSend(key, "b", 60_000), "held");
      const results = await Promise.all(["c", "d", "e"].map((o) => store.claimSend({ ...key, targetId: "t2" }, o, 60_000)));
      assert.deepEqual(results.filter((r) => r === "claimed").length, 1, "one of concurrent claimers wins");
      await new Promise((r) => setTimeout(r, 30));
      assert.equal(await store.claimSend(key, "b", 10), "claimed", "a's lease ran out: a died mid-send");
      await store.finishSend(key, "a");
      // c's lease is long, so b's fresh claim counts as live however slow the store is: "held" means
      // a's finish neither marked it done nor released it.
      assert.equal(await store.claimSend(key, "c", 60_000), "held", "a no longer owns it: its finish changed nothing");
      await store.finishSend(key, "b");
      assert.equal(await store.claimSend(key, "c", 0), "done");
      const released = { messageId: key.messageId, targetId: "t3" };
      assert.equal(await store.claimSend(released, "a", 60_000), "claimed");
      await store.releaseSend(released, "a");
      assert.equal(await store.claimSend(released, "b", 60_000), "claimed", "released (dead-lettered): a replay may send");
      assert.ok((await store.pruneSent(new Date(Date.now() + 1000))) >= 3);
      assert.equal(await store.claimSend(key, "c", 60_000), "claimed", "past the dedup window it is forgotten");
      await store.close();
    });
  });
}
