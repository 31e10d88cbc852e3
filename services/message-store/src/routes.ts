// The RPC surface of the message store.
import type { ConnectRouter, ServiceImpl } from "@connectrpc/connect";
import { MessageStoreService } from "../../../gen/chat/messagestore/v1/messagestore_pb.js";

export const services = [MessageStoreService];

export const routes = (handler: ServiceImpl<typeof MessageStoreService>) => (router: ConnectRouter) => {
  router.service(MessageStoreService, handler);
};
