// The provider port: one client per push platform (Web Push, FCM, APNs). A client sends one
// notification to one target and reports the provider's answer; it throws only when no answer
// came (network error, timeout), which counts as transient.
import type { PushPlatform } from "../../../../gen/chat/api/v1/enums_pb.js";
import type { Notification } from "../domain/notification.js";
import type { ProviderResponse } from "../domain/delivery.js";
import type { TargetRow } from "../store/port.js";

export interface PushProvider {
  readonly platform: PushPlatform;
  send(target: TargetRow, notification: Notification): Promise<ProviderResponse>;
  close(): Promise<void>;
}

/** The string form of a stored detail (details are JSON from the store). */
export const detail = (target: TargetRow, name: string): string => {
  const v = target.details[name];
  return typeof v === "string" ? v : "";
};
