import { OciferryError } from '../errors.ts';

/** Base class of the errors an OCI layout store throws on purpose; `code` tells them apart. */
export class LayoutError extends OciferryError {}

/** The store holds no blob with this digest. */
export class BlobUnknownError extends LayoutError {
  readonly digest: string;

  constructor(digest: string, dir: string) {
    super('BLOB_UNKNOWN', `blob ${digest} is not in the OCI layout ${dir}`);
    this.digest = digest;
  }
}

/** A layout reference named a tag or digest the layout does not have. */
export class NotFoundInLayoutError extends LayoutError {
  constructor(ref: string) {
    super('MANIFEST_UNKNOWN', `${ref}: not found in the layout's index.json`);
  }
}

/** A layout file (`oci-layout`, `index.json`, a manifest) is missing or malformed. */
export class LayoutInvalidError extends LayoutError {
  readonly path: string;
  /** What is wrong with the file, without its path. */
  readonly reason: string;

  constructor(path: string, reason: string, options?: { cause?: unknown }) {
    super('LAYOUT_INVALID', `${path}: ${reason}`, options);
    this.path = path;
    this.reason = reason;
  }
}

/** `index.json.lock` stayed held by another writer for longer than the lock timeout. */
export class LockTimeoutError extends LayoutError {
  readonly lockPath: string;
  /** Who holds the lock, as written in the lock file (`pid@hostname`), when readable. */
  readonly holder: string | undefined;

  constructor(args: { lockPath: string; timeoutMs: number; holder?: string }) {
    const by = args.holder ? ` by ${args.holder}` : '';
    super(
      'LOCK_TIMEOUT',
      `${args.lockPath} is held${by}; gave up after ${args.timeoutMs} ms. ` +
        'If no other ociferry or BuildKit process uses this directory, delete the lock file.',
    );
    this.lockPath = args.lockPath;
    this.holder = args.holder;
  }
}

/**
 * `index.json.lock` stopped being this writer's while it held it: another writer broke it (judged
 * stale), or it could not be refreshed for the stale time. An update not yet written is not
 * written; one written meanwhile may have raced the other writer, so check `index.json`.
 */
export class LockLostError extends LayoutError {
  readonly lockPath: string;

  constructor(args: { lockPath: string; why: string; cause?: unknown }) {
    super(
      'LOCK_LOST',
      `${args.lockPath} was lost while held: ${args.why}. Another writer may have updated index.json at the same time; check it and run again`,
      args.cause === undefined ? undefined : { cause: args.cause },
    );
    this.lockPath = args.lockPath;
  }
}

/** A tag is not a valid `org.opencontainers.image.ref.name`. */
export class InvalidTagError extends LayoutError {
  readonly tag: string;

  constructor(tag: string) {
    super(
      'TAG_INVALID',
      `invalid tag ${JSON.stringify(tag.length > 100 ? `${tag.slice(0, 100)}...` : tag)}: ` +
        'expected components of letters and digits joined by - . _ : @ + -- or /',
    );
    this.tag = tag;
  }
}
