/**
 * A small tar writer for tests that need archives real tools would not write: hostile names,
 * every entry type, PAX records, GNU long names, broken headers. Unlike the fixture writer in
 * fixtures/generate.ts (plain files and directories), it covers the whole format.
 */

/** One entry of {@link tar}. */
export interface TarSpec {
  path: string;
  /** Default 'directory' when `path` ends in '/', else 'file'. */
  type?: 'file' | 'directory' | 'symlink' | 'hardlink' | 'char-device' | 'block-device' | 'fifo';
  data?: Buffer | string;
  linkpath?: string;
  /** Default 0o755 for directories, 0o644 otherwise. */
  mode?: number;
  uid?: number;
  gid?: number;
  /** Seconds since the epoch (default 0). */
  mtime?: number;
  /** PAX records for an `x` header in front of the entry. Names longer than 100 bytes get one. */
  pax?: Record<string, string>;
  /** Spell long names as GNU `L`/`K` entries instead of PAX records. */
  gnu?: boolean;
  /** Raw type flag, overriding `type`. */
  typeflag?: string;
  /** Change the header block before its checksum is computed. */
  mutate?: (header: Buffer) => void;
  /** Leave the checksum field as spaces (an invalid header). */
  badChecksum?: boolean;
}

const FLAGS = {
  file: '0',
  hardlink: '1',
  symlink: '2',
  'char-device': '3',
  'block-device': '4',
  directory: '5',
  fifo: '6',
} as const;

/** A tar archive of `specs`, closed by two zero blocks and then `trailer` (default nothing). */
export function tar(specs: readonly TarSpec[], options: { trailer?: Buffer } = {}): Buffer {
  return Buffer.concat([
    ...specs.map(tarEntry),
    Buffer.alloc(1024),
    options.trailer ?? Buffer.alloc(0),
  ]);
}

/** The blocks of one entry: any PAX or GNU long-name entries, the header, the padded data. */
export function tarEntry(spec: TarSpec): Buffer {
  const type = spec.type ?? (spec.path.endsWith('/') ? 'directory' : 'file');
  const data = Buffer.from(spec.data ?? '');
  const linkpath = spec.linkpath ?? '';
  const parts: Buffer[] = [];
  const pax: Record<string, string> = { ...spec.pax };
  let name = spec.path;
  let linkname = linkpath;
  if (Buffer.byteLength(name) > 100) {
    if (spec.gnu) parts.push(longName('L', name));
    else pax.path ??= name;
    name = name.slice(0, 100);
  }
  if (Buffer.byteLength(linkname) > 100) {
    if (spec.gnu) parts.push(longName('K', linkname));
    else pax.linkpath ??= linkname;
    linkname = linkname.slice(0, 100);
  }
  if (Object.keys(pax).length > 0) {
    const records = paxData(pax);
    parts.push(header({ name: 'PaxHeader', typeflag: 'x', size: records.length }), pad(records));
  }
  parts.push(
    header({
      name,
      typeflag: spec.typeflag ?? FLAGS[type],
      size: type === 'file' ? data.length : 0,
      mode: spec.mode ?? (type === 'directory' ? 0o755 : 0o644),
      uid: spec.uid,
      gid: spec.gid,
      mtime: spec.mtime,
      linkname,
      gnu: spec.gnu,
      mutate: spec.mutate,
      badChecksum: spec.badChecksum,
    }),
  );
  if (type === 'file') parts.push(pad(data));
  return Buffer.concat(parts);
}

/** PAX records `"%d key=value\n"` where the length counts the whole record. */
export function paxData(records: Record<string, string>): Buffer {
  return Buffer.concat(
    Object.entries(records).map(([key, value]) => {
      const body = ` ${key}=${value}\n`;
      const bytes = Buffer.byteLength(body);
      let length = bytes + 1;
      while (length !== bytes + String(length).length) length = bytes + String(length).length;
      return Buffer.from(`${length}${body}`);
    }),
  );
}

/** Fields of one raw header block. */
export interface HeaderFields {
  name: string;
  typeflag: string;
  size?: number;
  mode?: number;
  uid?: number | undefined;
  gid?: number | undefined;
  mtime?: number | undefined;
  linkname?: string;
  /** GNU magic (`ustar  \0`) instead of POSIX ustar. */
  gnu?: boolean | undefined;
  /** ustar prefix field (POSIX only). */
  prefix?: string;
  mutate?: ((header: Buffer) => void) | undefined;
  badChecksum?: boolean | undefined;
}

/** One 512-byte header block with its checksum. */
export function header(fields: HeaderFields): Buffer {
  const block = Buffer.alloc(512);
  block.write(fields.name, 0, 100, 'utf8');
  block.write(octal(fields.mode ?? 0o644, 8), 100, 'ascii');
  block.write(octal(fields.uid ?? 0, 8), 108, 'ascii');
  block.write(octal(fields.gid ?? 0, 8), 116, 'ascii');
  block.write(octal(fields.size ?? 0, 12), 124, 'ascii');
  block.write(octal(fields.mtime ?? 0, 12), 136, 'ascii');
  block.write(fields.typeflag, 156, 1, 'latin1');
  block.write(fields.linkname ?? '', 157, 100, 'utf8');
  block.write(fields.gnu ? 'ustar  \0' : 'ustar\u000000', 257, 'latin1');
  if (fields.prefix !== undefined) block.write(fields.prefix, 345, 155, 'utf8');
  fields.mutate?.(block);
  if (fields.badChecksum) block.fill(0x20, 148, 156);
  else setChecksum(block);
  return block;
}

/** Recompute the checksum of a header block in place. */
export function setChecksum(block: Buffer): void {
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += block[i] ?? 0;
  block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'ascii');
}

function longName(flag: 'L' | 'K', name: string): Buffer {
  const data = Buffer.from(`${name}\0`);
  return Buffer.concat([
    header({ name: '././@LongLink', typeflag: flag, size: data.length, gnu: true }),
    pad(data),
  ]);
}

function octal(value: number, width: number): string {
  return `${value.toString(8).padStart(width - 1, '0')}\0`;
}

function pad(data: Buffer): Buffer {
  return Buffer.concat([data, Buffer.alloc((512 - (data.length % 512)) % 512)]);
}
