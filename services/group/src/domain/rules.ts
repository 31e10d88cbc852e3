// Pure rules of conversations and memberships: ids, the one-per-pair key of direct conversations,
// paging tokens. No I/O.
import { randomBytes } from "node:crypto";

/** A new conversation id: "c_" and 22 url-safe random characters (132 bits). */
export const newConversationId = (): string => `c_${randomBytes(17).toString("base64url").slice(0, 22)}`;

/** The key that makes a direct conversation unique per unordered pair of users (length-prefixed: unambiguous for any ids). */
export function pairKey(a: string, b: string): string {
  const [lo, hi] = a < b ? [a, b] : [b, a];
  return `${lo.length}:${lo}|${hi}`;
}

/** Page tokens are the last key of the previous page, opaque to clients. */
export const encodePageToken = (last: string): string => Buffer.from(last, "utf8").toString("base64url");
export const decodePageToken = (token: string): string => (token === "" ? "" : Buffer.from(token, "base64url").toString("utf8"));

export const pageSize = (requested: number, fallback: number, max: number): number => Math.min(requested || fallback, max);

/** A new group change id: "chg_" and 22 url-safe random characters; also the system message's idempotency key. */
export const newChangeId = (): string => `chg_${randomBytes(17).toString("base64url").slice(0, 22)}`;
