// WebSocket framing rules: decoding, refusals with reasons, error frames, the flood limit, and the
// server's ready-made frames as a WebSocket client reads them.
import { create, toBinary } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ClientFrameSchema } from "../../../gen/chat/api/v1/frames_pb.js";
import type { Socket } from "node:net";
import { WebSocket, WebSocketServer } from "ws";
import { chooseEncoding, decodeClientFrame, errorFrame, FrameError, webSocketFrames } from "../src/domain/frames.js";

describe("client frames", () => {
  it("decode from binary protobuf and from canonical JSON", () => {
    const frame = create(ClientFrameSchema, { requestId: 3, request: { case: "sendMessage", value: { conversationId: "c", clientMsgId: "m", text: "héllo" } } });
    assert.equal(decodeClientFrame(Buffer.from(toBinary(ClientFrameSchema, frame)), true).request.value?.$typeName, "chat.api.v1.SendMessageRequest");
    const json = decodeClientFrame(Buffer.from(JSON.stringify({ requestId: 4, listConversations: {} })), false);
    assert.deepEqual([json.requestId, json.request.case], [4, "listConversations"]);
  });

  it("refuse malformed frames, unknown types and invalid UTF-8 with InvalidArgument", () => {
    const refused = (data: Buffer, binary: boolean) => assert.throws(() => decodeClientFrame(data, binary), (e: unknown) => e instanceof FrameError && e.code === Code.InvalidArgument);
    refused(Buffer.from("{nope"), false);
    refused(Buffer.from(JSON.stringify({ requestId: 1, teleport: {} })), false);
    refused(Buffer.from(JSON.stringify({ requestId: 1 })), false);
    refused(Buffer.from([0xc3, 0x28]), false);
    refused(Buffer.from([0x0a, 0xff]), true);
    // field 10 (send_message) holding field 3 (text) with the invalid UTF-8 byte 0xff
    refused(Buffer.from([0x52, 0x03, 0x1a, 0x01, 0xff]), true);
    // Named as such wherever the byte is: in a list item, in a message nested in a list (a member
    // id, a sync cursor's conversation id: put in place of a marker of an otherwise valid frame).
    const corrupted = (request: Parameters<typeof create<typeof ClientFrameSchema>>[1]) => {
      const bytes = Buffer.from(toBinary(ClientFrameSchema, create(ClientFrameSchema, request)));
      bytes[bytes.indexOf("zz")] = 0xff;
      return bytes;
    };
    for (const bytes of [
      corrupted({ requestId: 1, request: { case: "createGroup", value: { title: "t", memberIds: ["ab", "zz"] } } }),
      corrupted({ requestId: 1, request: { case: "sync", value: { cursors: [{ conversationId: "zz" }] } } }),
      Buffer.from([0x52, 0x03, 0x1a, 0x01, 0xff]),
    ]) {
      assert.throws(() => decodeClientFrame(bytes, true), { message: "invalid UTF-8 in a string field" });
    }
    // U+FFFD that the client sent is text like any other.
    const sent = create(ClientFrameSchema, { requestId: 2, request: { case: "createGroup", value: { title: "t", memberIds: ["a\uFFFDb"] } } });
    const decoded = decodeClientFrame(Buffer.from(toBinary(ClientFrameSchema, sent)), true);
    assert.deepEqual(decoded.request.case === "createGroup" ? decoded.request.value.memberIds : [], ["a\uFFFDb"]);
  });

  it("name error codes as Connect does, and pick the subprotocol", () => {
    const frame = errorFrame(9, Code.PermissionDenied, "no");
    assert.deepEqual(frame.response.value, { $typeName: "chat.api.v1.Error", code: "permission_denied", message: "no", retryAfterMs: 0 });
    const busy = errorFrame(10, Code.ResourceExhausted, "busy", 1500);
    assert.deepEqual(busy.response.case === "error" ? [busy.response.value.code, busy.response.value.retryAfterMs] : [], ["resource_exhausted", 1500]);
    assert.equal(chooseEncoding(new Set(["chat.v1.json", "chat.v1.proto"])), "chat.v1.proto");
    assert.equal(chooseEncoding(new Set()), "chat.v1.json");
  });
});

describe("server frames", () => {
  it("are read back by a WebSocket client as one message per payload, at every length encoding", async () => {
    // Payload lengths around the three length forms of RFC 6455 (7-bit, 16-bit, 64-bit).
    const sizes = [0, 5, 125, 126, 65_535, 65_536, 70_000];
    for (const [encoding, binary] of [["chat.v1.proto", true], ["chat.v1.json", false]] as const) {
      const payloads = sizes.map((n, i) => (binary ? Buffer.alloc(n, i) : "é".repeat(Math.floor(n / 2)) + "x".repeat(n % 2)));
      // A real server and client over loopback: the frames go straight to the server's socket.
      const wss = new WebSocketServer({ host: "127.0.0.1", port: 0, perMessageDeflate: false });
      await new Promise((r) => wss.once("listening", r));
      const { port } = wss.address() as { port: number };
      wss.once("connection", (ws) => (ws as unknown as { _socket: Socket })._socket.write(webSocketFrames(payloads, encoding)));
      const client = new WebSocket(`ws://127.0.0.1:${port}`, { maxPayload: 1 << 20 });
      const got: { data: Buffer; isBinary: boolean }[] = [];
      await new Promise<void>((resolve, reject) => {
        client.on("message", (data: Buffer, isBinary: boolean) => {
          got.push({ data, isBinary });
          if (got.length === payloads.length) resolve();
        });
        client.once("error", reject);
        client.once("close", () => resolve());
      });
      client.close();
      await new Promise((r) => wss.close(r));
      assert.equal(got.length, payloads.length, encoding);
      got.forEach((m, i) => {
        assert.equal(m.isBinary, binary);
        assert.deepEqual(m.data, Buffer.from(payloads[i] ?? ""));
      });
    }
  });
});
