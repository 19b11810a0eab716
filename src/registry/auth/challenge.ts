import parsers, { type ParsedParams } from 'www-authenticate/lib/parsers.js';

/** One challenge of a `WWW-Authenticate` header (RFC 9110 §11.6.1). */
export interface Challenge {
  /** Auth scheme in lower case: `bearer`, `basic` or another. */
  readonly scheme: string;
  /** Auth parameters: names in lower case, values unquoted. Empty for a scheme-only challenge. */
  readonly params: Readonly<Record<string, string>>;
}

/**
 * The auth-param list parser of `www-authenticate@0.6.3` (`lib/parsers`, CommonJS, untyped). It
 * parses what follows the scheme of a single challenge; a failure sets `err` and never throws.
 * Its `WWW_Authenticate` sibling is not used: its unanchored `(\w+)\s+` scheme regex misreads
 * schemes such as `AWS4-HMAC-SHA256` and throws on scheme-only challenges.
 */
const ParamsParser = parsers.Authentication_Info;

const TOKEN = "[!#$%&'*+.^_`|~0-9A-Za-z-]+";
/** `name BWS = BWS value`: an auth-param, value still raw. */
const PARAM = new RegExp(`^(${TOKEN})[ \\t]*=[ \\t]*(.*)$`, 's');
/** `scheme [ 1*SP rest ]`: the start of a challenge. */
const CHALLENGE_START = new RegExp(`^(${TOKEN})(?:[ \\t]+(.*))?$`, 's');
const TOKEN68 = /^[A-Za-z0-9._~+/-]+=*$/;
const QUOTED = /^"((?:[^"\\]|\\.)*)"$/s;

interface Draft {
  readonly scheme: string;
  /**
   * Params normalised to what the package reads: `name=token` or `name="text"` with `""` for a
   * quote, each name behind {@link NAME_PREFIX}.
   */
  readonly params: string[];
}

/**
 * Put before every param name handed to the package and taken off its answer: the package stores
 * params in a plain object, where a param named `__proto__` would vanish.
 */
const NAME_PREFIX = 'p';

/**
 * Every challenge in every `WWW-Authenticate` field line (undici gives `string | string[] | undefined`).
 * Never throws: a challenge the parser rejects is skipped, and so are fragments that fit no challenge.
 * Each line is parsed on its own, so an unterminated quote in one cannot swallow the next.
 */
export function parseChallenges(header: string | string[] | undefined): Challenge[] {
  const lines = Array.isArray(header) ? header : [header];
  return lines.flatMap((line) => (typeof line === 'string' ? parseLine(line) : []));
}

/** The challenge to answer: Bearer if offered, else Basic, else `undefined`. */
export function preferredChallenge(challenges: Challenge[]): Challenge | undefined {
  return (
    challenges.find((c) => c.scheme === 'bearer') ?? challenges.find((c) => c.scheme === 'basic')
  );
}

function parseLine(line: string): Challenge[] {
  const drafts: Draft[] = [];
  let current: Draft | undefined;
  for (const segment of splitOutsideQuotes(line)) {
    const text = segment.trim();
    if (text === '') continue;
    const param = PARAM.exec(text);
    if (param) {
      current?.params.push(normaliseParam(param[1] as string, param[2] as string));
      continue;
    }
    current = startChallenge(text);
    if (current) drafts.push(current);
  }
  return drafts.flatMap((draft) => finish(draft) ?? []);
}

/** A new challenge from `scheme`, `scheme token68` or `scheme name=value`; `undefined` for garbage. */
function startChallenge(text: string): Draft | undefined {
  const start = CHALLENGE_START.exec(text);
  if (!start) return undefined;
  const scheme = start[1] as string;
  const rest = start[2]?.trim();
  // A token68 credential (e.g. Negotiate's) is not an auth-param; the challenge keeps its scheme only.
  if (rest === undefined || rest === '' || TOKEN68.test(rest)) return { scheme, params: [] };
  const param = PARAM.exec(rest);
  return param
    ? { scheme, params: [normaliseParam(param[1] as string, param[2] as string)] }
    : undefined;
}

/** Rewrite an RFC quoted-string into the package's dialect (`""` escapes a quote, no backslash escapes). */
function normaliseParam(name: string, raw: string): string {
  const value = raw.trim();
  const quoted = QUOTED.exec(value);
  if (!quoted) return `${NAME_PREFIX}${name}=${value}`;
  const text = (quoted[1] as string).replace(/\\(.)/gs, '$1');
  return `${NAME_PREFIX}${name}="${text.replaceAll('"', '""')}"`;
}

function finish(draft: Draft): Challenge | undefined {
  let parsed: ParsedParams;
  try {
    parsed = new ParamsParser(draft.params.join(','));
  } catch {
    return undefined;
  }
  if (parsed.err !== undefined) return undefined;
  const params = Object.fromEntries(
    Object.entries(parsed.parms).map(([name, value]) => [
      name.slice(NAME_PREFIX.length).toLowerCase(),
      value,
    ]),
  );
  return Object.freeze({ scheme: draft.scheme.toLowerCase(), params: Object.freeze(params) });
}

/** Split on commas that are not inside a quoted-string (which may hold `\"`). */
function splitOutsideQuotes(line: string): string[] {
  const parts: string[] = [];
  let start = 0;
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quoted) {
      if (c === '\\') i++;
      else if (c === '"') quoted = false;
    } else if (c === '"') {
      quoted = true;
    } else if (c === ',') {
      parts.push(line.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(line.slice(start));
  return parts;
}
