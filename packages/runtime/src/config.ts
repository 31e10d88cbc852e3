// Typed configuration from the environment, parsed and validated once at startup.
// A missing or invalid setting stops the process with a message naming every bad setting.
import { z } from "zod";

export { z };

/** Thrown by loadConfig; cmd/chat.ts prints it and exits with status 2. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    this.name = "ConfigError";
  }
}

export type Env = Record<string, string | undefined>;

/** Parses `env` (default process.env) with a zod object whose keys are the variable names. */
export function loadConfig<S extends z.ZodObject>(schema: S, env: Env = process.env): z.infer<S> {
  const input: Record<string, string> = {};
  for (const key of Object.keys(schema.shape)) {
    const value = env[key];
    if (value !== undefined && value !== "") input[key] = value;
  }
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  throw new ConfigError(
    result.error.issues.map((issue) => {
      const name = issue.path.join(".");
      const got = input[name];
      if (got === undefined && issue.code === "invalid_type") return `${name}: required but not set`;
      return `${name}: ${issue.message}${got === undefined ? "" : ` (got ${JSON.stringify(got)})`}`;
    }),
  );
}

/** A TCP port, with a default. */
export const port = (fallback: number) => z.coerce.number().int().min(0).max(65535).default(fallback);

/** A duration or count in whole numbers, with a default. */
export const int = (fallback: number, min = 0) => z.coerce.number().int().min(min).default(fallback);

/** A host:port address of a peer service. */
export const address = () =>
  z.string().regex(/^[^\s:/]+:\d{1,5}$|^\[[0-9a-fA-F:]+\]:\d{1,5}$/, "must be host:port");

/** A comma-separated list. */
export const list = () =>
  z.string().transform((s) =>
    s
      .split(",")
      .map((x) => x.trim())
      .filter((x) => x !== ""),
  );

/** A driver name from a fixed set; an unknown name stops startup. */
export const driver = <const T extends readonly [string, ...string[]]>(names: T, fallback: T[number]) =>
  z.enum(names, { error: () => `unknown driver; expected one of: ${names.join(", ")}` }).default(fallback);

/** Settings every service reads. */
export const commonSettings = {
  /** Interface to bind; loopback by default. */
  HOST: z.string().default("127.0.0.1"),
  /** OTLP/HTTP endpoint for traces; unset: no export. */
  OTEL_EXPORTER_OTLP_ENDPOINT: z.string().url().optional(),
  /** How long a graceful shutdown may take before connections are cut. */
  SHUTDOWN_TIMEOUT_MS: int(10_000),
  /** Where embedded drivers keep their data. */
  DATA_DIR: z.string().default("var/data"),
};

/** A connection URL without its password, for messages; the setting's name when it does not parse. */
export function redactUrl(url: string, setting: string): string {
  try {
    const u = new URL(url);
    if (u.password !== "") u.password = "***";
    return u.toString();
  } catch {
    return `(${setting})`;
  }
}
