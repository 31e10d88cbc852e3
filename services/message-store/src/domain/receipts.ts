// Receipt watermark rules: they never move back, never pass the conversation's last seq, and
// reading a message also marks it delivered. Pure.
import { ReceiptKind } from "../../../../gen/chat/api/v1/enums_pb.js";

export interface Watermarks {
  deliveredSeq: number;
  readSeq: number;
}

export const NO_WATERMARKS: Watermarks = { deliveredSeq: 0, readSeq: 0 };

/** What a report asks for, clamped to the last seq. */
export function requested(kind: ReceiptKind, seq: number, lastSeq: number): Watermarks {
  const s = Math.min(seq, lastSeq);
  return kind === ReceiptKind.READ ? { deliveredSeq: s, readSeq: s } : { deliveredSeq: s, readSeq: 0 };
}

/** The watermarks after raising `current` towards `to` (never lower). */
export function raise(current: Watermarks, to: Watermarks): Watermarks {
  return { deliveredSeq: Math.max(current.deliveredSeq, to.deliveredSeq, to.readSeq), readSeq: Math.max(current.readSeq, to.readSeq) };
}

export const sameWatermarks = (a: Watermarks, b: Watermarks): boolean => a.deliveredSeq === b.deliveredSeq && a.readSeq === b.readSeq;

/**
 * Messages after the read watermark (the user's own sends raise it, so they never count), and
 * after `visibleFromSeq`: a member who joined late has nothing unread from before their join.
 */
export const unreadCount = (lastSeq: number, w: Watermarks, visibleFromSeq = 0): number => Math.max(0, lastSeq - Math.max(w.readSeq, visibleFromSeq));
