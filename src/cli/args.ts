/**
 * Command-line option parsing shared by the commands: node's parseArgs
 * (strict: unknown options are refused), plus number parsing that names
 * the option and the accepted range when a value is wrong.
 */
import { parseArgs, type ParseArgsConfig } from "node:util";
import { SeerError } from "../errors.ts";

export type Options = NonNullable<ParseArgsConfig["options"]>;

export function parse(args: string[], options: Options, help: string) {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: false })
      .values as Record<string, string | boolean | undefined>;
  } catch (e) {
    throw new SeerError(
      "invalid_argument",
      `${e instanceof Error ? e.message : e}\n\n${help}`,
    );
  }
}

/** A number option: undefined when absent, else checked against the range. */
export function number(
  values: Record<string, string | boolean | undefined>,
  name: string,
  { min = -Infinity, max = Infinity, integer = false } = {},
): number | undefined {
  const raw = values[name];
  if (raw === undefined) return undefined;
  const n = Number(raw);
  const ok = typeof raw === "string" && raw.trim() !== "" &&
    Number.isFinite(n) &&
    n >= min && n <= max && (!integer || Number.isInteger(n));
  if (!ok) {
    const kind = integer ? "an integer" : "a number";
    const range = max === Infinity ? `≥ ${min}` : `from ${min} to ${max}`;
    throw new SeerError(
      "invalid_argument",
      `--${name} must be ${kind} ${range}, got "${raw}"`,
    );
  }
  return n;
}

export function string(
  values: Record<string, string | boolean | undefined>,
  name: string,
): string | undefined {
  const v = values[name];
  return typeof v === "string" ? v : undefined;
}
