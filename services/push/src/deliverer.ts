// Turns one PushRequested event into notifications: checks at send time that the member is still
// offline, has not read the message on another device and has not muted the conversation; builds
// the notification (title, sender, preview or generic text, badge = total unread); then, per
// target, claims the (message, target) sent-record, sends through the platform's provider with
// bounded retries, removes targets the provider reports gone, and dead-letters what still fails.
import { create, toBinary } from "@bufbuild/protobuf";
import type { Client } from "@connectrpc/connect";
import { PushPlatform } from "../../../gen/chat/api/v1/enums_pb.js";
import type { ConnectionService } from "../../../gen/chat/connection/v1/connection_pb.js";
import { PushDeadLetteredSchema, type PushRequested } from "../../../gen/chat/events/v1/events_pb.js";
import type { ConversationInfo, GroupService } from "../../../gen/chat/group/v1/group_pb.js";
import type { MessageStoreService } from "../../../gen/chat/messagestore/v1/messagestore_pb.js";
import type { Bus } from "../../../packages/runtime/src/bus/port.js";
import type { Logger } from "../../../packages/runtime/src/log.js";
import { meter } from "../../../packages/runtime/src/telemetry/index.js";
import { topics } from "../../../packages/runtime/src/topics.js";
import { classify, nextRetry, type Outcome, type RetryPolicy } from "./domain/delivery.js";
import { buildNotification, suppression, type Notification } from "./domain/notification.js";
import type { PushProvider } from "./providers/port.js";
import type { PushStore, SendKey, TargetRow } from "./store/port.js";

export interface Peers {
  connection: Client<typeof ConnectionService>;
  group: Client<typeof GroupService>;
  messageStore: Client<typeof MessageStoreService>;
}

export interface DelivererOptions {
  store: PushStore;
  providers: Map<PushPlatform, PushProvider>;
  peers: Peers;
  bus: Bus;
  logger: Logger;
  policy: RetryPolicy;
  /** This process's name on sent-record claims (unique per start). */
  owner: string;
  /** A claim older than this, still "sending", belongs to a sender that died. */
  claimLeaseMs: number;
  sleep?: (ms: number) => Promise<void>;
}

type TargetResult = { kind: "sent" } | { kind: "gone" } | { kind: "failed"; why: string; attempts: number };

/** What happened to one event (for logs and tests). */
export interface EventResult {
  suppressed?: string;
  sent: number;
  skipped: number;
  gone: number;
  deadLettered?: string;
}

const PLATFORM_NAME: Record<number, string> = { [PushPlatform.WEB_PUSH]: "web_push", [PushPlatform.FCM]: "fcm", [PushPlatform.APNS]: "apns" };
const platformName = (p: PushPlatform): string => PLATFORM_NAME[p] ?? "unknown";

/** Conversations listed for the badge: at most this many pages of 1,000. */
const MAX_CONVERSATION_PAGES = 10;

export class Deliverer {
  private readonly sleep: (ms: number) => Promise<void>;
  /** Sends in progress in this process, by message and target. */
  private readonly sending = new Map<string, Promise<TargetResult>>();
  private readonly m = {
    notifications: meter("chat.push").createCounter("push.notifications", { description: "Notifications by platform and outcome (sent, gone, failed, duplicate)" }),
    suppressed: meter("chat.push").createCounter("push.suppressed", { description: "Push requests with nothing to send, by reason (online, read, muted, no_targets)" }),
    skipped: meter("chat.push").createCounter("push.skipped", { description: "Targets skipped because their provider is not configured, by platform" }),
    retries: meter("chat.push").createCounter("push.retries", { description: "Provider retries by platform" }),
    deadLettered: meter("chat.push").createCounter("push.dead_lettered", { description: "Push requests sent to the dead-letter topic" }),
  };

  constructor(private readonly opts: DelivererOptions) {
    this.sleep = opts.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
  }

  /** Handles one event; resolves once every target is settled (sent, gone, skipped or dead-lettered). */
  async deliver(event: PushRequested): Promise<EventResult> {
    const { store, logger } = this.opts;
    const message = event.message;
    const result: EventResult = { sent: 0, skipped: 0, gone: 0 };
    if (message === undefined || message.content.case !== "text" || event.userId === "") {
      await this.deadLetter(event, "not a push request for a text message", 1);
      return { ...result, deadLettered: "not a push request for a text message" };
    }
    const targets = await store.listTargets(event.userId);
    if (targets.length === 0) {
      this.m.suppressed.add(1, { reason: "no_targets" });
      return { ...result, suppressed: "no_targets" };
    }
    const usable = targets.filter((t) => {
      if (this.opts.providers.has(t.platform)) return true;
      logger.info({ userId: event.userId, targetId: t.targetId, platform: platformName(t.platform) }, "push provider not configured; target skipped");
      this.m.skipped.add(1, { platform: platformName(t.platform) });
      result.skipped++;
      return false;
    });
    if (usable.length === 0) return result;
    const conversationId = message.conversationId;
    const [state, mutedUntil, showPreviews] = await Promise.all([
      this.userState(event.userId, conversationId, true),
      store.mutedUntil(event.userId, conversationId),
      store.showPreviews(event.userId),
    ]);
    const why = suppression({ online: state.online, readSeq: state.readSeq, seq: Number(message.seq), mutedUntil, now: new Date() });
    if (why !== undefined) {
      this.m.suppressed.add(1, { reason: why });
      logger.debug({ userId: event.userId, messageId: message.messageId, why }, "no push");
      return { ...result, suppressed: why };
    }
    const notification = buildNotification({
      conversationId,
      conversationType: state.conversation?.type ?? event.conversationType,
      conversationTitle: state.conversation?.title || event.conversationTitle,
      senderName: message.senderId,
      text: message.content.value,
      messageId: message.messageId,
      seq: Number(message.seq),
      showPreviews,
      badge: state.badge,
    });
    // Before a retry, the member may have come online or read it elsewhere meanwhile: asked again.
    const stillDue = async () => {
      const now = await this.userState(event.userId, conversationId, false);
      return suppression({ online: now.online, readSeq: now.readSeq, seq: Number(message.seq), mutedUntil: await store.mutedUntil(event.userId, conversationId), now: new Date() }) === undefined;
    };
    const outcomes = await Promise.all(usable.map((t) => this.sendToTarget(t, notification, stillDue)));
    const failures: string[] = [];
    let attempts = 0;
    for (const [i, o] of outcomes.entries()) {
      if (o.kind === "sent") result.sent++;
      else if (o.kind === "gone") result.gone++;
      else {
        failures.push(`${usable[i]?.targetId ?? "?"} (${platformName(usable[i]?.platform ?? PushPlatform.UNSPECIFIED)}): ${o.why}`);
        attempts = Math.max(attempts, o.attempts);
      }
    }
    if (failures.length > 0) {
      const error = failures.join("; ");
      await this.deadLetter(event, error, attempts);
      return { ...result, deadLettered: error };
    }
    return result;
  }

  /** Publishes the event to the dead-letter topic (chat.push.dlq.v1). */
  async deadLetter(event: PushRequested | undefined, error: string, attempts: number): Promise<void> {
    const value = create(PushDeadLetteredSchema, { error, attempts, ...(event === undefined ? {} : { request: event }) });
    await this.opts.bus.publish(topics.pushDeadLettered.name, [{ key: event?.userId ?? "", value: toBinary(PushDeadLetteredSchema, value) }]);
    this.m.deadLettered.add(1);
    this.opts.logger.warn({ userId: event?.userId, messageId: event?.message?.messageId, error, attempts }, "push request dead-lettered");
  }

  /**
   * Online now? The user's read watermark in the conversation; with `forNotification`, also their
   * total unread count (the badge) and the conversation (a re-check before a retry needs neither).
   */
  private async userState(userId: string, conversationId: string, forNotification: boolean): Promise<{ online: boolean; readSeq: number; badge: number; conversation?: ConversationInfo }> {
    const { connection, group, messageStore } = this.opts.peers;
    const [sessions, conversations] = await Promise.all([connection.listSessions({ userIds: [userId] }), forNotification ? this.conversationsOf(userId) : []]);
    const online = sessions.users.some((u) => u.sessions.length > 0);
    if (online) return { online, readSeq: 0, badge: 0 };
    const ids = [...new Set([conversationId, ...conversations.map((c) => c.conversationId)])];
    const chunks: string[][] = [];
    for (let i = 0; i < ids.length; i += 1000) chunks.push(ids.slice(i, i + 1000));
    const states = (await Promise.all(chunks.map((conversationIds) => messageStore.getConversationStates({ userId, conversationIds })))).flatMap((r) => r.states);
    const badge = states.reduce((sum, s) => sum + Number(s.unreadCount), 0);
    const readSeq = Number(states.find((s) => s.conversationId === conversationId)?.watermarks?.readSeq ?? 0n);
    if (!forNotification) return { online, readSeq, badge };
    const conversation = conversations.find((c) => c.conversationId === conversationId) ?? (await group.getConversation({ conversationId })).conversation;
    return { online, readSeq, badge, ...(conversation === undefined ? {} : { conversation }) };
  }

  private async conversationsOf(userId: string): Promise<ConversationInfo[]> {
    const out: ConversationInfo[] = [];
    let pageToken = "";
    for (let page = 0; page < MAX_CONVERSATION_PAGES; page++) {
      const r = await this.opts.peers.group.listUserConversations({ userId, pageSize: 1000, pageToken });
      for (const m of r.memberships) if (m.conversation !== undefined) out.push(m.conversation);
      pageToken = r.nextPageToken;
      if (pageToken === "") break;
    }
    return out;
  }

  /**
   * One send per (message, target) at a time in this process. The sent-record's claim is by process
   * (a retry after a store error takes its own claim back at once), so it cannot tell two copies of
   * one event handled at once here (one batch holding it twice) apart: the second waits for the
   * first to settle, then finds the record done.
   */
  private async sendToTarget(target: TargetRow, n: Notification, stillDue: () => Promise<boolean>): Promise<TargetResult> {
    const id = `${n.messageId}\n${target.targetId}`;
    for (let prior = this.sending.get(id); prior !== undefined; prior = this.sending.get(id)) await prior.catch(() => undefined);
    const sending = this.claimAndSend(target, n, stillDue);
    this.sending.set(id, sending);
    try {
      return await sending;
    } finally {
      if (this.sending.get(id) === sending) this.sending.delete(id);
    }
  }

  /** Claims, sends with bounded retries, settles. Never throws for a provider's answer; store errors do throw. */
  private async claimAndSend(target: TargetRow, n: Notification, stillDue: () => Promise<boolean>): Promise<TargetResult> {
    const { store, policy, owner, logger } = this.opts;
    const provider = this.opts.providers.get(target.platform);
    const platform = platformName(target.platform);
    if (provider === undefined) return { kind: "failed", why: "no provider", attempts: 0 };
    const key: SendKey = { messageId: n.messageId, targetId: target.targetId };
    if (!(await this.claim(key))) {
      this.m.notifications.add(1, { platform, outcome: "duplicate" });
      return { kind: "sent" };
    }
    for (let attempt = 1; ; attempt++) {
      let outcome: Outcome;
      try {
        outcome = classify(target.platform, await provider.send(target, n), Date.now());
      } catch (err) {
        outcome = { kind: "transient", why: (err as Error).message };
      }
      if (outcome.kind === "sent" || outcome.kind === "gone") {
        if (outcome.kind === "gone") {
          await store.removeGoneTarget(target);
          logger.info({ userId: target.userId, targetId: target.targetId, platform, why: outcome.why }, "push target gone; removed");
        }
        await store.finishSend(key, owner);
        this.m.notifications.add(1, { platform, outcome: outcome.kind });
        return outcome.kind === "sent" ? { kind: "sent" } : { kind: "gone" };
      }
      const decision = nextRetry(attempt, outcome, policy);
      if (!decision.retry) {
        await store.releaseSend(key, owner);
        this.m.notifications.add(1, { platform, outcome: "failed" });
        return { kind: "failed", why: decision.why, attempts: attempt };
      }
      this.m.retries.add(1, { platform });
      logger.debug({ targetId: target.targetId, platform, why: outcome.why, attempt, retryInMs: decision.delayMs }, "push send failed; retrying");
      await this.sleep(decision.delayMs);
      if (!(await stillDue())) {
        await store.finishSend(key, owner);
        this.m.suppressed.add(1, { reason: "before_retry" });
        return { kind: "sent" };
      }
    }
  }

  /** True when this process holds the claim; false when it was already sent. Waits out a dead sender's lease. */
  private async claim(key: SendKey): Promise<boolean> {
    const { store, owner, claimLeaseMs } = this.opts;
    const deadline = Date.now() + 2 * claimLeaseMs + 5_000;
    for (;;) {
      const r = await store.claimSend(key, owner, claimLeaseMs);
      if (r === "claimed") return true;
      if (r === "done") return false;
      if (Date.now() > deadline) throw new Error(`sent-record ${key.messageId}/${key.targetId} stays claimed by another sender`);
      await this.sleep(Math.min(1_000, claimLeaseMs));
    }
  }
}
