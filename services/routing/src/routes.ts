// The RPC surface of the routing service.
import type { ConnectRouter, ServiceImpl } from "@connectrpc/connect";
import { RoutingService } from "../../../gen/chat/routing/v1/routing_pb.js";

export const services = [RoutingService];

export const routes = (handler: ServiceImpl<typeof RoutingService>) => (router: ConnectRouter) => {
  router.service(RoutingService, handler);
};
