/** Go's zero `time.Time` as `json.Marshal` writes it; BuildKit writes it for unset `createdAt`. */
export const ZERO_TIME = '0001-01-01T00:00:00Z';

const RFC3339 =
  /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:Z|([+-])(\d{2}):(\d{2}))$/;

/** A parsed RFC 3339 time: the instant plus the text Go would write back for it. */
interface GoTime {
  /** Seconds since the Unix epoch (negative before 1970). */
  readonly seconds: number;
  readonly nanos: number;
  readonly text: string;
}

/**
 * Parse an RFC 3339 time with the rules of Go's `Time.UnmarshalJSON` (range-checked fields,
 * `.` before fractions, upper-case `T` and `Z`). Returns undefined when Go would refuse it.
 */
function parseGoTime(value: string): GoTime | undefined {
  const m = RFC3339.exec(value);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s, fraction = '', sign, zh = '00', zm = '00'] = m;
  const year = Number(y);
  const month = Number(mo);
  const day = Number(d);
  const hour = Number(h);
  const minute = Number(mi);
  const second = Number(s);
  const zoneHour = Number(zh);
  const zoneMinute = Number(zm);
  if (month < 1 || month > 12 || day < 1 || day > daysIn(month, year)) return undefined;
  if (hour > 23 || minute > 59 || second > 59 || zoneHour > 23 || zoneMinute > 59) return undefined;
  // Go keeps nanoseconds: later digits are dropped, trailing zeros are not written back.
  const digits = fraction.slice(0, 9);
  const nanos = Number(digits.padEnd(9, '0'));
  const trimmed = digits.replace(/0+$/, '');
  const offset = (sign === '-' ? -1 : 1) * (zoneHour * 3600 + zoneMinute * 60);
  const zone = offset === 0 ? 'Z' : `${sign}${zh}:${zm}`;
  const seconds =
    daysFromCivil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second - offset;
  const text = `${value.slice(0, 19)}${trimmed ? `.${trimmed}` : ''}${zone}`;
  return { seconds, nanos, text };
}

/**
 * The text Go's `json.Marshal` writes for a time it parsed from `value` (RFC3339Nano: trailing
 * fraction zeros dropped, a zero offset written as `Z`), or undefined when Go would refuse `value`.
 */
export function normalizeGoTime(value: string): string | undefined {
  return parseGoTime(value)?.text;
}

/**
 * Order two RFC 3339 times by instant (negative when `a` is earlier). A string Go would refuse
 * counts as the zero time, as an unset `time.Time` does in BuildKit.
 */
export function compareGoTimes(a: string, b: string): number {
  const x = parseGoTime(a) ?? ZERO;
  const y = parseGoTime(b) ?? ZERO;
  return x.seconds - y.seconds || x.nanos - y.nanos;
}

/**
 * Chronological ranks of RFC 3339 times: 0 for the earliest, equal instants sharing a rank
 * (`...Z` and `...+00:00` are one instant). Each distinct string is parsed once, so ordering n
 * results costs one sort of numbers instead of n log n parses. Refused strings rank as the zero time.
 */
export function rankGoTimes(times: Iterable<string>): Map<string, number> {
  const distinct = [...new Set(times)].map((text) => ({ text, time: parseGoTime(text) ?? ZERO }));
  distinct.sort((a, b) => a.time.seconds - b.time.seconds || a.time.nanos - b.time.nanos);
  const ranks = new Map<string, number>();
  let rank = -1;
  let previous: GoTime | undefined;
  for (const { text, time } of distinct) {
    if (!previous || time.seconds !== previous.seconds || time.nanos !== previous.nanos) rank++;
    ranks.set(text, rank);
    previous = time;
  }
  return ranks;
}

/** Milliseconds since the Unix epoch of an RFC 3339 time (refused strings: the zero time). */
export function goTimeMillis(value: string): number {
  const time = parseGoTime(value) ?? ZERO;
  return time.seconds * 1000 + time.nanos / 1e6;
}

function daysIn(month: number, year: number): number {
  if (month === 2) return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

/** Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm). */
function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yearOfEra = y - era * 400;
  const dayOfYear = Math.floor((153 * (month + (month > 2 ? -3 : 9)) + 2) / 5) + day - 1;
  const dayOfEra =
    yearOfEra * 365 + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100) + dayOfYear;
  return era * 146097 + dayOfEra - 719468;
}

const ZERO = parseGoTime(ZERO_TIME) as GoTime;
