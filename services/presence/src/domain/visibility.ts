// What a viewer sees of a user's presence: online/offline always; last seen unless the user hid it
// (a user always sees their own). Pure.
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { PresenceState } from "../../../../gen/chat/api/v1/enums_pb.js";
import { PresenceSchema, type Presence } from "../../../../gen/chat/api/v1/model_pb.js";

export interface UserPresence {
  online: boolean;
  /** When the last device went away (offline users seen before). */
  lastSeenMs?: number | undefined;
}

/** Whether the viewer may see the user's last seen. */
export const seesLastSeen = (viewerId: string, userId: string, showsLastSeen: boolean): boolean => viewerId === userId || showsLastSeen;

/** The presence as shown, with last seen only when `lastSeenVisible` and the user is offline. */
export function presenceFor(userId: string, p: UserPresence, lastSeenVisible: boolean): Presence {
  return create(PresenceSchema, {
    userId,
    state: p.online ? PresenceState.ONLINE : PresenceState.OFFLINE,
    ...(!p.online && lastSeenVisible && p.lastSeenMs !== undefined ? { lastSeen: timestampFromMs(p.lastSeenMs) } : {}),
  });
}
