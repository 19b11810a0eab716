import { ExtractError } from './extract-error.ts';

const BLOCK = 512;
/** Largest PAX header or GNU long name read into memory (the limit of Go's archive/tar). */
const MAX_META_SIZE = 1 << 20;
const EMPTY = Buffer.alloc(0);

/** Kinds of tar entries the reader hands out; PAX and GNU metadata entries are folded in. */
export type TarEntryType =
  | 'file'
  | 'directory'
  | 'symlink'
  | 'hardlink'
  | 'char-device'
  | 'block-device'
  | 'fifo';

/** One entry's metadata, after PAX records, GNU long names and the ustar prefix are applied. */
export interface TarHeader {
  /** The name as stored (not normalised: may be absolute or contain `..`). */
  readonly path: string;
  readonly type: TarEntryType;
  /** Bytes of data; 0 for every type but `file`. */
  readonly size: number;
  /** Permission bits (`& 0o7777`). */
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  /** Modification time in seconds since the epoch, fractional when a PAX record says so. */
  readonly mtime: number;
  /** Target of a symlink or hardlink, '' otherwise. */
  readonly linkpath: string;
}

/** A tar entry: its header and a stream of its data. */
export interface TarEntry extends TarHeader {
  /**
   * The data in chunks as they arrive (never buffered whole). Valid until the next entry is
   * requested; whatever is left unread then is skipped.
   */
  body(): AsyncGenerator<Buffer, void, undefined>;
}

const TYPES: Readonly<Record<string, TarEntryType>> = {
  '0': 'file',
  '\0': 'file',
  '7': 'file',
  '1': 'hardlink',
  '2': 'symlink',
  '3': 'char-device',
  '4': 'block-device',
  '5': 'directory',
  '6': 'fifo',
};

/** Metadata collected from PAX (`x`) and GNU (`L`, `K`) entries for the entry that follows. */
interface Pending {
  pax?: Map<string, string>;
  longName?: string;
  longLink?: string;
}

/**
 * Read a tar stream (ustar, PAX, GNU, V7) entry by entry. Malformed input fails with
 * {@link ExtractError} `TAR_INVALID`; sparse files and unknown entry types with
 * `TAR_ENTRY_UNSUPPORTED`. The archive ends at its first zero block or at the end of the input
 * (at a block boundary); whatever follows the end marker is read and ignored, so the whole source
 * is consumed, which keeps digests computed over it complete.
 */
export async function* readTar(
  source: AsyncIterable<Uint8Array>,
): AsyncGenerator<TarEntry, void, undefined> {
  const reader = new ByteReader(source[Symbol.asyncIterator]());
  let pending: Pending = {};
  for (;;) {
    const offset = reader.offset;
    const block = await reader.exact(BLOCK, `in the header at offset ${offset}`);
    if (block === undefined || isZeroBlock(block)) {
      if (pending.pax || pending.longName !== undefined || pending.longLink !== undefined) {
        throw invalid(`archive ends after an extended header at offset ${offset}`);
      }
      await reader.drain();
      return;
    }
    const raw = parseHeader(block, offset);
    if (raw.flag === 'x' || raw.flag === 'L' || raw.flag === 'K') {
      const data = await readMeta(reader, raw.size, offset);
      if (raw.flag === 'x') pending.pax = parsePax(data, offset, pending.pax);
      else if (raw.flag === 'L') pending.longName = cString(data, 0, data.length);
      else pending.longLink = cString(data, 0, data.length);
      continue;
    }
    if (raw.flag === 'g') {
      await reader.skip(padded(raw.size), `in a global PAX header at offset ${offset}`);
      continue;
    }
    const header = applyPending(raw, pending, offset);
    pending = {};
    const state = { remaining: header.size, current: true };
    const where = `inside entry ${JSON.stringify(header.path)} at offset ${offset}`;
    yield {
      ...header,
      async *body() {
        if (!state.current) throw new Error('tar entry body read after the next entry');
        while (state.remaining > 0) {
          const piece = await reader.some(state.remaining, where);
          state.remaining -= piece.length;
          yield piece;
        }
      },
    };
    state.current = false;
    await reader.skip(state.remaining + padding(header.size), where);
  }
}

/** True if `block` is a plausible tar header: 512 bytes, not all zero, with a valid checksum. */
export function isTarHeader(block: Uint8Array): boolean {
  if (block.length < BLOCK) return false;
  const header = Buffer.from(block.buffer, block.byteOffset, BLOCK);
  if (isZeroBlock(header)) return false;
  try {
    verifyChecksum(header, 0);
    return true;
  } catch {
    return false;
  }
}

/** A header as stored, before PAX and GNU metadata are applied. */
interface RawHeader {
  flag: string;
  name: string;
  linkname: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
}

function parseHeader(block: Buffer, offset: number): RawHeader {
  verifyChecksum(block, offset);
  const magic = block.toString('latin1', 257, 263);
  let name = cString(block, 0, 100);
  // POSIX ustar (and star) keep a path prefix; GNU tar uses that space for other fields.
  if (magic === 'ustar\0') {
    const star = block.toString('latin1', 508, 512) === 'tar\0';
    const prefix = cString(block, 345, star ? 131 : 155);
    if (prefix !== '') name = `${prefix}/${name}`;
  }
  const number = (start: number, length: number, field: string) =>
    parseNumber(block, start, length, `${field} of the header at offset ${offset}`);
  return {
    flag: String.fromCharCode(block[156] ?? 0),
    name,
    linkname: cString(block, 157, 100),
    mode: number(100, 8, 'mode') & 0o7777,
    uid: number(108, 8, 'uid'),
    gid: number(116, 8, 'gid'),
    size: nonNegative(number(124, 12, 'size'), offset),
    mtime: number(136, 12, 'mtime'),
  };
}

function applyPending(raw: RawHeader, pending: Pending, offset: number): TarHeader {
  let { name, linkname, size, mtime, uid, gid } = raw;
  if (pending.longName !== undefined) name = pending.longName;
  if (pending.longLink !== undefined) linkname = pending.longLink;
  for (const [key, value] of pending.pax ?? []) {
    if (key.startsWith('GNU.sparse.')) throw unsupported('a sparse file', name);
    if (value === '') continue;
    if (key === 'path') name = value;
    else if (key === 'linkpath') linkname = value;
    else if (key === 'size') size = paxInteger(value, key, offset);
    else if (key === 'uid') uid = paxInteger(value, key, offset);
    else if (key === 'gid') gid = paxInteger(value, key, offset);
    else if (key === 'mtime') mtime = paxTime(value, offset);
  }
  if (name.includes('\0') || linkname.includes('\0')) {
    throw invalid(`entry name with a NUL byte at offset ${offset}`);
  }
  let type = TYPES[raw.flag];
  if (type === undefined) {
    throw unsupported(
      raw.flag === 'S' ? 'a sparse file' : `entry type ${JSON.stringify(raw.flag)}`,
      name,
    );
  }
  // V7 archives mark directories only by a trailing slash.
  if (raw.flag === '\0' && name.endsWith('/')) type = 'directory';
  return {
    path: name,
    type,
    size: type === 'file' ? size : 0,
    mode: raw.mode,
    uid,
    gid,
    mtime,
    linkpath: type === 'symlink' || type === 'hardlink' ? linkname : '',
  };
}

async function readMeta(reader: ByteReader, size: number, offset: number): Promise<Buffer> {
  if (size > MAX_META_SIZE) {
    throw invalid(`extended header of ${size} bytes at offset ${offset} (limit ${MAX_META_SIZE})`);
  }
  const where = `in the extended header at offset ${offset}`;
  const data = (await reader.exact(size, where)) ?? EMPTY;
  if (data.length < size) throw invalid(`archive ends ${where}`);
  await reader.skip(padding(size), where);
  return data;
}

/** PAX records: `"%d %s=%s\n"`, the length counting the whole record in bytes. */
function parsePax(
  data: Buffer,
  offset: number,
  into = new Map<string, string>(),
): Map<string, string> {
  let pos = 0;
  while (pos < data.length) {
    const bad = () =>
      invalid(`malformed PAX record at byte ${pos} of the header at offset ${offset}`);
    const space = data.indexOf(0x20, pos);
    const digits = space < 0 ? '' : data.toString('latin1', pos, space);
    if (!/^[0-9]{1,9}$/.test(digits)) throw bad();
    const end = pos + Number(digits);
    if (end <= space + 1 || end > data.length || data[end - 1] !== 0x0a) throw bad();
    const equals = data.indexOf(0x3d, space + 1);
    if (equals <= space + 1 || equals >= end) throw bad();
    into.set(data.toString('utf8', space + 1, equals), data.toString('utf8', equals + 1, end - 1));
    pos = end;
  }
  return into;
}

function paxInteger(value: string, key: string, offset: number): number {
  const n = Number(value);
  if (!/^[0-9]+$/.test(value) || !Number.isSafeInteger(n)) {
    throw invalid(`PAX ${key} ${JSON.stringify(value)} in the header at offset ${offset}`);
  }
  return n;
}

function paxTime(value: string, offset: number): number {
  if (!/^-?[0-9]{1,15}(\.[0-9]*)?$/.test(value)) {
    throw invalid(`PAX mtime ${JSON.stringify(value)} in the header at offset ${offset}`);
  }
  return Number(value);
}

function verifyChecksum(block: Buffer, offset: number): void {
  let stored: number;
  try {
    stored = parseNumber(block, 148, 8, 'checksum');
  } catch {
    throw invalid(`bad header checksum at offset ${offset}`);
  }
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const byte = i >= 148 && i < 156 ? 0x20 : (block[i] ?? 0);
    unsigned += byte;
    signed += byte > 0x7f ? byte - 0x100 : byte;
  }
  // Old writers summed signed chars; accept either, as GNU tar and Go do.
  if (stored !== unsigned && stored !== signed) {
    throw invalid(`bad header checksum at offset ${offset}`);
  }
}

/** A numeric field: octal text (space/NUL padded) or GNU base-256 when the high bit is set. */
function parseNumber(block: Buffer, start: number, length: number, what: string): number {
  const first = block[start] ?? 0;
  if (first & 0x80) {
    const negative = (first & 0x40) !== 0;
    let value = 0;
    for (let i = 0; i < length; i++) {
      let byte = block[start + i] ?? 0;
      if (negative) byte ^= 0xff;
      if (i === 0) byte &= 0x7f;
      value = value * 256 + byte;
      if (value > Number.MAX_SAFE_INTEGER) throw invalid(`out-of-range ${what}`);
    }
    return negative ? -value - 1 : value;
  }
  let text = block.toString('latin1', start, start + length).replace(/^[ \0]+|[ \0]+$/g, '');
  const nul = text.indexOf('\0');
  if (nul >= 0) text = text.slice(0, nul);
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text)) throw invalid(`non-octal ${what}: ${JSON.stringify(text)}`);
  return Number.parseInt(text, 8);
}

function nonNegative(size: number, offset: number): number {
  if (size < 0) throw invalid(`negative size in the header at offset ${offset}`);
  return size;
}

/** The bytes of a field up to its first NUL, as UTF-8. */
function cString(data: Buffer, start: number, length: number): string {
  const end = data.indexOf(0, start);
  return data.toString('utf8', start, end < 0 || end > start + length ? start + length : end);
}

function isZeroBlock(block: Buffer): boolean {
  for (const byte of block) if (byte !== 0) return false;
  return true;
}

function padding(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK;
}

function padded(size: number): number {
  return size + padding(size);
}

function invalid(message: string): ExtractError {
  return new ExtractError('TAR_INVALID', `invalid tar: ${message}`);
}

function unsupported(what: string, name: string): ExtractError {
  return new ExtractError(
    'TAR_ENTRY_UNSUPPORTED',
    `tar entry ${JSON.stringify(name)} is ${what}, which extract does not support`,
    { entry: name },
  );
}

/** Pulls exact byte counts out of a chunk iterator, holding at most one chunk beyond a header. */
class ByteReader {
  readonly #source: AsyncIterator<Uint8Array>;
  #buffer: Buffer = EMPTY;
  #done = false;
  /** Bytes handed out or skipped so far. */
  offset = 0;

  constructor(source: AsyncIterator<Uint8Array>) {
    this.#source = source;
  }

  /** Exactly `n` bytes; undefined when the input ended right here; TAR_INVALID if it ends within. */
  async exact(n: number, where: string): Promise<Buffer | undefined> {
    if (this.#buffer.length >= n) return this.#take(n);
    const parts = [this.#buffer];
    let have = this.#buffer.length;
    this.#buffer = EMPTY;
    while (have < n) {
      if (!(await this.#pull())) {
        if (have === 0) return undefined;
        throw invalid(`archive ends ${where}`);
      }
      parts.push(this.#buffer);
      have += this.#buffer.length;
    }
    const last = parts.pop() ?? EMPTY;
    const need = n - (have - last.length);
    parts.push(last.subarray(0, need));
    this.#buffer = last.subarray(need);
    this.offset += n;
    return Buffer.concat(parts, n);
  }

  /** Between 1 and `max` bytes, without copying. */
  async some(max: number, where: string): Promise<Buffer> {
    if (this.#buffer.length === 0 && !(await this.#pull())) throw invalid(`archive ends ${where}`);
    return this.#take(Math.min(max, this.#buffer.length));
  }

  async skip(n: number, where: string): Promise<void> {
    while (n > 0) n -= (await this.some(n, where)).length;
  }

  /** Read the rest of the input and throw it away. */
  async drain(): Promise<void> {
    this.#buffer = EMPTY;
    while (await this.#pull()) this.#buffer = EMPTY;
  }

  #take(n: number): Buffer {
    const piece = this.#buffer.subarray(0, n);
    this.#buffer = this.#buffer.subarray(n);
    this.offset += n;
    return piece;
  }

  async #pull(): Promise<boolean> {
    while (!this.#done) {
      const next = await this.#source.next();
      if (next.done) {
        this.#done = true;
        break;
      }
      if (next.value.length > 0) {
        const chunk = next.value;
        this.#buffer = Buffer.isBuffer(chunk)
          ? chunk
          : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length);
        return true;
      }
    }
    return false;
  }
}
