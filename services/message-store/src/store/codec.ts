// How both drivers persist a message's content: the Message oneof, protobuf-encoded on its own.
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { MessageSchema, type Message } from "../../../../gen/chat/api/v1/model_pb.js";
import type { NewMessage } from "./port.js";

export const encodeContent = (content: Message["content"]): Uint8Array => toBinary(MessageSchema, create(MessageSchema, { content }));

export const decodeContent = (bytes: Uint8Array): Message["content"] => fromBinary(MessageSchema, bytes).content;

/** A stored row, as both drivers read it back. */
export interface MessageRow {
  conversation_id: string;
  seq: number;
  message_id: string;
  client_msg_id: string;
  sender_id: string;
  sender_device_id: string;
  server_time: Date;
  content: Uint8Array;
}

export function toMessage(row: MessageRow): Message {
  return create(MessageSchema, {
    conversationId: row.conversation_id,
    seq: BigInt(row.seq),
    messageId: row.message_id,
    clientMsgId: row.client_msg_id,
    senderId: row.sender_id,
    senderDeviceId: row.sender_device_id,
    serverTime: { seconds: BigInt(Math.floor(row.server_time.getTime() / 1000)), nanos: (row.server_time.getTime() % 1000) * 1e6 },
    content: decodeContent(row.content),
  });
}

export function withSeq(message: NewMessage, seq: number): Message {
  return toMessage({
    conversation_id: message.conversationId,
    seq,
    message_id: message.messageId,
    client_msg_id: message.clientMsgId,
    sender_id: message.senderId,
    sender_device_id: message.senderDeviceId,
    server_time: message.serverTime,
    content: encodeContent(message.content),
  });
}
