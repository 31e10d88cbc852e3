// Who may read and write a conversation, in time: a member reads from their join point on; a
// removed member reads up to their removal and writes nothing.
import type { Membership } from "../../../../gen/chat/group/v1/group_pb.js";
import type { Window } from "./sequencing.js";

export type Access = { kind: "member"; window: Window } | { kind: "former"; window: Window } | { kind: "none" };

export function accessOf(membership: Membership | undefined): Access {
  if (membership === undefined) return { kind: "none" };
  const fromSeq = Number(membership.visibleFromSeq) + 1;
  if (membership.member) return { kind: "member", window: { fromSeq, toSeq: Number.POSITIVE_INFINITY } };
  if (membership.removedAtSeq > 0n) return { kind: "former", window: { fromSeq, toSeq: Number(membership.removedAtSeq) } };
  return { kind: "none" };
}
