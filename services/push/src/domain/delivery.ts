// Pure rules of delivery: what a provider's answer means, and when (whether) to try again.
import { PushPlatform } from "../../../../gen/chat/api/v1/enums_pb.js";

/** A provider's answer, as the provider clients report it. */
export interface ProviderResponse {
  status: number;
  /** The provider's reason: APNs `reason`, FCM `errorCode` (or `status`); empty for Web Push. */
  reason: string;
  /** The Retry-After header, when present. */
  retryAfter?: string | undefined;
}

export type Outcome =
  /** Accepted by the provider. */
  | { kind: "sent" }
  /** The registration no longer exists: remove the target. */
  | { kind: "gone"; why: string }
  /** Worth another try (throttled, provider error, network), after retryAfterMs when the provider said. */
  | { kind: "transient"; why: string; retryAfterMs?: number }
  /** Will fail the same way again (a bad request, bad credentials). */
  | { kind: "permanent"; why: string };

const FCM_GONE = new Set(["UNREGISTERED"]);
const FCM_TRANSIENT = new Set(["UNAVAILABLE", "INTERNAL", "QUOTA_EXCEEDED"]);
const APNS_GONE = new Set(["BadDeviceToken", "Unregistered", "DeviceTokenNotForTopic"]);
/** Provider tokens expire; the client mints a new one for the next try. */
const APNS_TOKEN = new Set(["ExpiredProviderToken"]);

/** What a provider's answer means. `nowMs` parses an HTTP-date Retry-After. */
export function classify(platform: PushPlatform, r: ProviderResponse, nowMs: number): Outcome {
  const why = `${r.status}${r.reason === "" ? "" : ` ${r.reason}`}`;
  if (r.status >= 200 && r.status < 300) return { kind: "sent" };
  const retryAfterMs = r.retryAfter === undefined ? undefined : parseRetryAfter(r.retryAfter, nowMs);
  const transient = (): Outcome => ({ kind: "transient", why, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) });
  switch (platform) {
    case PushPlatform.WEB_PUSH:
      // RFC 8030 8.2: 404 and 410 mean the subscription expired or was removed.
      if (r.status === 404 || r.status === 410) return { kind: "gone", why };
      break;
    case PushPlatform.FCM:
      if (FCM_GONE.has(r.reason) || r.status === 404) return { kind: "gone", why };
      if (FCM_TRANSIENT.has(r.reason)) return transient();
      // An expired OAuth2 access token: the client fetches a new one.
      if (r.status === 401) return transient();
      break;
    case PushPlatform.APNS:
      if (r.status === 410 || APNS_GONE.has(r.reason)) return { kind: "gone", why };
      if (APNS_TOKEN.has(r.reason)) return transient();
      break;
    default:
      return { kind: "permanent", why: `unknown platform ${String(platform)}` };
  }
  if (r.status === 429 || r.status >= 500 || r.status === 408) return transient();
  return { kind: "permanent", why };
}

/** Retry-After (RFC 9110 10.2.3): delay-seconds or an HTTP-date; undefined when unreadable. */
export function parseRetryAfter(value: string, nowMs: number): number | undefined {
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowMs);
}

export interface RetryPolicy {
  /** Attempts in all (the first included). */
  maxAttempts: number;
  /** The first backoff; doubles each time. */
  baseDelayMs: number;
  /** No wait is longer; a Retry-After past it gives up instead of blocking the partition. */
  maxDelayMs: number;
}

export type RetryDecision = { retry: true; delayMs: number } | { retry: false; why: string };

/**
 * After failed attempt number `attempt` (1-based): try again after a delay (exponential with
 * jitter, or the provider's Retry-After), or give up (dead-letter).
 */
export function nextRetry(attempt: number, outcome: Outcome, policy: RetryPolicy, random: () => number = Math.random): RetryDecision {
  if (outcome.kind !== "transient") return { retry: false, why: outcome.kind === "sent" ? "sent" : outcome.why };
  if (attempt >= policy.maxAttempts) return { retry: false, why: `${outcome.why} after ${attempt} attempts` };
  if (outcome.retryAfterMs !== undefined) {
    if (outcome.retryAfterMs > policy.maxDelayMs) return { retry: false, why: `${outcome.why}: Retry-After ${outcome.retryAfterMs} ms is past the ${policy.maxDelayMs} ms cap` };
    return { retry: true, delayMs: outcome.retryAfterMs };
  }
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  // "Equal jitter": at least half the ceiling, so retries of many targets spread out but still back off.
  return { retry: true, delayMs: Math.round(ceiling / 2 + (random() * ceiling) / 2) };
}
