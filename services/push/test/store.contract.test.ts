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
  });
}
