// The RPC surface of the push service.
import type { ConnectRouter, ServiceImpl } from "@connectrpc/connect";
import { PushService } from "../../../gen/chat/push/v1/push_pb.js";

export const services = [PushService];

export const routes = (handler: ServiceImpl<typeof PushService>) => (router: ConnectRouter) => {
  router.service(PushService, handler);
};
