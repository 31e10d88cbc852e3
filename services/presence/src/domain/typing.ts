// Typing indicators, pure: which SetTyping calls fan out, which are refused by the sender's rate
// limit, and which indicators lapsed. An indicator shown to the others lasts ttlMs (the expires_at
// they are told); a refresh within the first half of that is absorbed (nothing new to tell), a later
// one fans out again with a new expiry. Nothing here is ever stored.
import { TokenBucket } from "../../../../packages/runtime/src/rate.js";

export interface TypingSettings {
  /** How long an indicator lasts without a refresh. */
  ttlMs: number;
  /** SetTyping calls per second per sender, and the burst allowed. */
  ratePerSecond: number;
  burst: number;
}

export type TypingDecision =
  /** Over the sender's rate limit. */
  | { kind: "refused" }
  /** Tell the other members' devices. */
  | { kind: "fanout"; typing: boolean; expiresAtMs: number }
  /** Nothing new to tell. */
  | { kind: "quiet" };

export interface Lapsed {
  conversationId: string;
  userId: string;
}

const keyOf = (conversationId: string, userId: string) => `${conversationId}\n${userId}`;

export class TypingTracker {
  /** Indicators being shown: when they were last fanned out and when they lapse. */
  private readonly shown = new Map<string, Lapsed & { fannedAtMs: number; expiresAtMs: number }>();
  private readonly buckets = new Map<string, TokenBucket>();

  constructor(
    private readonly settings: TypingSettings,
    private readonly now: () => number = Date.now,
  ) {}

  set(conversationId: string, userId: string, typing: boolean): TypingDecision {
    let bucket = this.buckets.get(userId);
    if (bucket === undefined) this.buckets.set(userId, (bucket = new TokenBucket(this.settings.ratePerSecond, this.settings.burst, this.now)));
    if (!bucket.take()) return { kind: "refused" };
    const t = this.now();
    const key = keyOf(conversationId, userId);
    const current = this.shown.get(key);
    if (!typing) {
      if (current === undefined) return { kind: "quiet" };
      this.shown.delete(key);
      return { kind: "fanout", typing: false, expiresAtMs: t };
    }
    if (current !== undefined && t - current.fannedAtMs < this.settings.ttlMs / 2) return { kind: "quiet" };
    const expiresAtMs = t + this.settings.ttlMs;
    this.shown.set(key, { conversationId, userId, fannedAtMs: t, expiresAtMs });
    return { kind: "fanout", typing: true, expiresAtMs };
  }

  /** Indicators whose time ran out without a refresh: each is reported once (fan out typing=false). */
  expire(): Lapsed[] {
    const t = this.now();
    const out: Lapsed[] = [];
    for (const [key, s] of this.shown) {
      if (s.expiresAtMs > t) continue;
      this.shown.delete(key);
      out.push({ conversationId: s.conversationId, userId: s.userId });
    }
    for (const [userId, bucket] of this.buckets) if (bucket.full()) this.buckets.delete(userId);
    return out;
  }
}
