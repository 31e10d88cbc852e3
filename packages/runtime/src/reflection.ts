// gRPC server reflection, v1 and v1alpha, answered from the descriptors embedded in gen/, so
// `grpcurl -plaintext host:port list` and `describe` work against every service.
import { create, toBinary, type DescFile, type DescMessage, type DescService } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import type { ConnectRouter } from "@connectrpc/connect";
import * as v1 from "../../../gen/grpc/reflection/v1/reflection_pb.js";
import * as v1alpha from "../../../gen/grpc/reflection/v1alpha/reflection_pb.js";

/** What one reflection request asks, independent of the protocol version. */
type Ask =
  | { case: "fileByFilename"; value: string }
  | { case: "fileContainingSymbol"; value: string }
  | { case: "fileContainingExtension"; value: { containingType: string; extensionNumber: number } }
  | { case: "allExtensionNumbersOfType"; value: string }
  | { case: "listServices"; value: string }
  | { case: undefined; value?: undefined };

/** The answer, independent of the protocol version. */
type Answer =
  | { case: "fileDescriptorResponse"; value: { fileDescriptorProto: Uint8Array[] } }
  | { case: "allExtensionNumbersResponse"; value: { baseTypeName: string; extensionNumber: number[] } }
  | { case: "listServicesResponse"; value: { service: { name: string }[] } }
  | { case: "errorResponse"; value: { errorCode: number; errorMessage: string } };

const NOT_FOUND = 5;
const INVALID_ARGUMENT = 3;

class DescriptorIndex {
  private readonly files = new Map<string, DescFile>();
  private readonly symbols = new Map<string, DescFile>();
  private readonly extensions = new Map<string, Map<number, DescFile>>();
  private readonly encoded = new Map<string, Uint8Array>();

  constructor(private readonly services: DescService[]) {
    for (const service of services) this.addFile(service.file);
  }

  private addFile(file: DescFile): void {
    if (this.files.has(file.proto.name)) return;
    this.files.set(file.proto.name, file);
    for (const dep of file.dependencies) this.addFile(dep);
    for (const service of file.services) {
      this.symbols.set(service.typeName, file);
      for (const method of service.methods) this.symbols.set(`${service.typeName}.${method.name}`, file);
    }
    const addMessage = (message: DescMessage): void => {
      this.symbols.set(message.typeName, file);
      for (const nested of message.nestedMessages) addMessage(nested);
      for (const e of message.nestedEnums) this.symbols.set(e.typeName, file);
    };
    for (const message of file.messages) addMessage(message);
    for (const e of file.enums) this.symbols.set(e.typeName, file);
    for (const ext of file.extensions) {
      this.symbols.set(ext.typeName, file);
      const byNumber = this.extensions.get(ext.extendee.typeName) ?? new Map<number, DescFile>();
      byNumber.set(ext.number, file);
      this.extensions.set(ext.extendee.typeName, byNumber);
    }
  }

  /** The file and every file it depends on, each once, dependencies last. */
  private withDependencies(file: DescFile): Uint8Array[] {
    const seen = new Set<string>();
    const out: Uint8Array[] = [];
    const visit = (f: DescFile): void => {
      if (seen.has(f.proto.name)) return;
      seen.add(f.proto.name);
      let bytes = this.encoded.get(f.proto.name);
      if (bytes === undefined) {
        bytes = toBinary(FileDescriptorProtoSchema, f.proto);
        this.encoded.set(f.proto.name, bytes);
      }
      out.push(bytes);
      for (const dep of f.dependencies) visit(dep);
    };
    visit(file);
    return out;
  }

  private files_(file: DescFile | undefined, what: string): Answer {
    if (file === undefined) return { case: "errorResponse", value: { errorCode: NOT_FOUND, errorMessage: `${what} not found` } };
    return { case: "fileDescriptorResponse", value: { fileDescriptorProto: this.withDependencies(file) } };
  }

  answer(ask: Ask): Answer {
    switch (ask.case) {
      case "listServices":
        return { case: "listServicesResponse", value: { service: this.services.map((s) => ({ name: s.typeName })) } };
      case "fileByFilename":
        return this.files_(this.files.get(ask.value), `file "${ask.value}"`);
      case "fileContainingSymbol":
        return this.files_(this.symbols.get(ask.value), `symbol "${ask.value}"`);
      case "fileContainingExtension":
        return this.files_(
          this.extensions.get(ask.value.containingType)?.get(ask.value.extensionNumber),
          `extension ${ask.value.extensionNumber} of "${ask.value.containingType}"`,
        );
      case "allExtensionNumbersOfType":
        return {
          case: "allExtensionNumbersResponse",
          value: { baseTypeName: ask.value, extensionNumber: [...(this.extensions.get(ask.value)?.keys() ?? [])] },
        };
      default:
        return { case: "errorResponse", value: { errorCode: INVALID_ARGUMENT, errorMessage: "empty reflection request" } };
    }
  }
}

/**
 * Serves reflection v1 and v1alpha on `router`, describing `services` plus the reflection services
 * themselves.
 */
export function registerReflection(router: ConnectRouter, services: DescService[]): void {
  const index = new DescriptorIndex([...services, v1.ServerReflection, v1alpha.ServerReflection]);
  router.service(v1.ServerReflection, {
    async *serverReflectionInfo(requests) {
      for await (const req of requests) {
        const messageResponse = index.answer(req.messageRequest);
        yield create(v1.ServerReflectionResponseSchema, { validHost: req.host, originalRequest: req, messageResponse });
      }
    },
  });
  router.service(v1alpha.ServerReflection, {
    async *serverReflectionInfo(requests) {
      for await (const req of requests) {
        const messageResponse = index.answer(req.messageRequest);
        yield create(v1alpha.ServerReflectionResponseSchema, { validHost: req.host, originalRequest: req, messageResponse });
      }
    },
  });
}
