// PushService: device push registrations, mutes and preview settings. Sending notifications from
// PushRequested events (Web Push, FCM, APNs) arrives with issue #6: no consumer runs yet.
import { create } from "@bufbuild/protobuf";
import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import { PushTargetSchema, type PushTarget } from "../../../gen/chat/api/v1/model_pb.js";
import type { PushService } from "../../../gen/chat/push/v1/push_pb.js";
import { invalidArgument, notFound, resourceExhausted } from "../../../packages/runtime/src/errors.js";
import { describeTarget, newTargetId } from "./domain/targets.js";
import type { PushStore, TargetRow } from "./store/port.js";

export interface PushHandlerOptions {
  store: PushStore;
  maxTargetsPerUser: number;
}

const view = (t: TargetRow): PushTarget =>
  create(PushTargetSchema, { targetId: t.targetId, deviceId: t.deviceId, platform: t.platform, updatedAt: timestampFromDate(t.updatedAt) });

export function createPushHandler(opts: PushHandlerOptions): ServiceImpl<typeof PushService> {
  const { store } = opts;
  return {
    async registerTarget(req) {
      const described = req.target === undefined ? undefined : describeTarget(req.target.target);
      if (described === undefined) throw invalidArgument("target: one of web_push, fcm, apns is required");
      const stored = await store.upsertTarget({ targetId: newTargetId(), userId: req.userId, deviceId: req.deviceId, ...described }, opts.maxTargetsPerUser);
      if (stored === "limit") throw resourceExhausted(`at most ${opts.maxTargetsPerUser} push targets per user; remove one first`);
      return { target: view(stored) };
    },
    async listTargets(req) {
      return { targets: (await store.listTargets(req.userId)).map(view) };
    },
    async removeTarget(req) {
      if (!(await store.removeTarget(req.userId, req.targetId))) throw notFound(`push target ${req.targetId} not found`);
      return {};
    },
    async muteConversation(req) {
      await store.setMute(req.userId, req.conversationId, req.mutedUntil === undefined ? undefined : timestampDate(req.mutedUntil));
      return {};
    },
    async updatePreviewSettings(req) {
      await store.setShowPreviews(req.userId, req.showPreviews);
      return {};
    },
  };
}
