import { execFile } from 'node:child_process';
import {
  createPrivateKey,
  type KeyObject,
  randomBytes,
  randomUUID,
  sign,
  X509Certificate,
} from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Grant, TestUser } from './registry.ts';
import { oncePerRun } from './run-dir.ts';

const execFileAsync = promisify(execFile);

/** RSA key and the self-signed certificate the registry trusts (`auth.token.rootcertbundle`). */
export interface TokenSigningKey {
  privateKey: KeyObject;
  certPem: string;
  /** The certificate in DER, as carried in each token's `x5c` header. */
  certDer: Buffer;
}

/** One token the server issued: who asked, for which scopes, and what the token grants. */
export interface TokenRequest {
  /** Authenticated user; undefined for an anonymous request. */
  user?: string;
  /** Requested scopes, one per entry (`repository:a/b:pull,push`). */
  scopes: string[];
  /** Repository access in the token (requested ∩ the user's grants); empty entries left out. */
  granted: { name: string; actions: string[] }[];
}

/** Options of {@link startTokenServer}. */
export interface TokenServerOptions {
  /** `service` the registry expects; tokens carry it as `aud`. */
  service: string;
  /** `iss` claim; the registry's `auth.token.issuer`. */
  issuer: string;
  users: Record<string, TestUser>;
  signingKey: TokenSigningKey;
  /** Access token lifetime in seconds; default 300. */
  expiresIn?: number;
}

/** A running token server implementing distribution's token spec (GET) and its OAuth2 flavour (POST). */
export interface TokenServer {
  /** Token endpoint URL, the registry's `auth.token.realm`. */
  readonly realm: string;
  /** Every token issued, in order. */
  readonly requests: TokenRequest[];
  close(): Promise<void>;
}

const REALM_PATH = '/token';
const MAX_FORM_BYTES = 64 * 1024;

let signingKey: Promise<TokenSigningKey> | undefined;

async function generateSigningKey(): Promise<TokenSigningKey> {
  const dir = await oncePerRun('token-signing-key', async (dir) => {
    await mkdir(dir);
    await execFileAsync('openssl', [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      join(dir, 'key.pem'),
      '-out',
      join(dir, 'cert.pem'),
      '-days',
      '2',
      '-subj',
      '/CN=ociferry-test-token-issuer',
    ]);
  });
  const [keyPem, certPem] = await Promise.all([
    readFile(join(dir, 'key.pem')),
    readFile(join(dir, 'cert.pem'), 'utf8'),
  ]);
  return {
    privateKey: createPrivateKey(keyPem),
    certPem,
    certDer: new X509Certificate(certPem).raw,
  };
}

/**
 * The token signing key and certificate, made with `openssl req -x509` once per test run (see
 * `oncePerRun`; RSA keygen is slow) and shared by every token server.
 */
export function tokenSigningKey(): Promise<TokenSigningKey> {
  signingKey ??= generateSigningKey();
  return signingKey;
}

function base64url(data: string | Buffer): string {
  return Buffer.from(data).toString('base64url');
}

/** `*` matches any run of characters, `/` included; everything else literally. */
function globMatches(glob: string, name: string): boolean {
  const pattern = glob.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'));
  return new RegExp(`^${pattern.join('.*')}$`).test(name);
}

/** `repository:a/b:pull,push` -> its parts; names may contain `:` (a registry host with a port). */
function parseScope(scope: string): { type: string; name: string; actions: string[] } | undefined {
  const first = scope.indexOf(':');
  const last = scope.lastIndexOf(':');
  if (first < 0 || last === first) return undefined;
  return {
    type: scope.slice(0, first),
    name: scope.slice(first + 1, last),
    actions: scope
      .slice(last + 1)
      .split(',')
      .filter((a) => a !== ''),
  };
}

/** Requested repository actions ∩ the actions `grants` allow on that repository. */
function grantedAccess(scopes: string[], grants: Grant[]): TokenRequest['granted'] {
  const granted: TokenRequest['granted'] = [];
  for (const scope of scopes) {
    const parsed = parseScope(scope);
    if (parsed?.type !== 'repository') continue;
    const allowed = new Set<string>(
      grants.filter((g) => globMatches(g.repository, parsed.name)).flatMap((g) => g.actions),
    );
    const actions = parsed.actions.filter((a) => allowed.has('*') || allowed.has(a));
    if (actions.length > 0) granted.push({ name: parsed.name, actions });
  }
  return granted;
}

function splitScopes(values: string[]): string[] {
  return values.flatMap((v) => v.split(' ')).filter((s) => s !== '');
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly body: unknown,
  ) {
    super(`token server answered ${status}`);
  }
}

function unauthorized(message: string): HttpError {
  return new HttpError(401, { errors: [{ code: 'UNAUTHORIZED', message }] });
}

async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  let body = '';
  for await (const chunk of req) {
    body += chunk;
    if (body.length > MAX_FORM_BYTES) throw new HttpError(413, { error: 'invalid_request' });
  }
  return new URLSearchParams(body);
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const json = JSON.stringify(body);
  const headers: Record<string, string | number> = {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(json),
  };
  if (status === 401) headers['www-authenticate'] = 'Basic realm="ociferry-test-token-server"';
  res.writeHead(status, headers).end(json);
}

/** Start a token server on a free 127.0.0.1 port. */
export async function startTokenServer(options: TokenServerOptions): Promise<TokenServer> {
  const { service, issuer, users, expiresIn = 300 } = options;
  const { privateKey, certDer } = options.signingKey;
  const requests: TokenRequest[] = [];
  const refreshTokens = new Map<string, string>();

  /** The user named by `username`/`password`, or throws 401. */
  const authenticate = (username: string, password: string): string => {
    const user = users[username];
    if (user === undefined || user.password !== password) {
      throw unauthorized('invalid username or password');
    }
    return username;
  };

  /**
   * The user from a Basic Authorization header; undefined when there is none. The password may be
   * a refresh token this server issued, with its user's name or `<token>` as the username (how
   * clients send an identity token to a realm that only speaks GET).
   */
  const basicUser = (header: string | undefined): string | undefined => {
    if (header === undefined) return undefined;
    const [scheme, encoded = ''] = header.split(' ', 2);
    if (scheme?.toLowerCase() !== 'basic')
      throw unauthorized('only Basic credentials are accepted');
    const decoded = Buffer.from(encoded, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) throw unauthorized('malformed Basic credentials');
    const username = decoded.slice(0, colon);
    const password = decoded.slice(colon + 1);
    const refreshUser = refreshTokens.get(password);
    if (refreshUser !== undefined && (username === refreshUser || username === '<token>')) {
      return refreshUser;
    }
    return authenticate(username, password);
  };

  const issue = (user: string | undefined, scopes: string[], offline: boolean) => {
    const grants = users[user ?? '']?.grants ?? [];
    const granted = grantedAccess(scopes, grants);
    const now = Math.floor(Date.now() / 1000);
    const header = { typ: 'JWT', alg: 'RS256', x5c: [certDer.toString('base64')] };
    const claims = {
      iss: issuer,
      sub: user ?? '',
      aud: service,
      exp: now + expiresIn,
      nbf: now - 1,
      iat: now,
      jti: randomUUID(),
      access: granted.map(({ name, actions }) => ({ type: 'repository', name, actions })),
    };
    const input = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(claims))}`;
    const signature = sign('sha256', Buffer.from(input), privateKey);
    requests.push({ ...(user === undefined ? {} : { user }), scopes, granted });
    let refreshToken: string | undefined;
    if (offline && user !== undefined) {
      refreshToken = randomBytes(24).toString('hex');
      refreshTokens.set(refreshToken, user);
    }
    return {
      token: `${input}.${base64url(signature)}`,
      expires_in: expiresIn,
      issued_at: new Date(now * 1000).toISOString(),
      ...(refreshToken === undefined ? {} : { refresh_token: refreshToken }),
    };
  };

  const checkService = (requested: string | null): void => {
    if (requested !== null && requested !== service) {
      throw new HttpError(400, {
        errors: [{ code: 'INVALID_REQUEST', message: `unknown service ${requested}` }],
      });
    }
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://token.invalid');
    if (url.pathname !== REALM_PATH) throw new HttpError(404, { error: 'not found' });
    if (req.method === 'GET') {
      const params = url.searchParams;
      checkService(params.get('service'));
      const user = basicUser(req.headers.authorization);
      const issued = issue(
        user,
        splitScopes(params.getAll('scope')),
        params.get('offline_token') === 'true',
      );
      return send(res, 200, { ...issued, access_token: issued.token });
    }
    if (req.method === 'POST') {
      const form = await readForm(req);
      checkService(form.get('service'));
      const scopes = splitScopes(form.getAll('scope'));
      let user: string;
      const grantType = form.get('grant_type');
      if (grantType === 'password') {
        user = authenticate(form.get('username') ?? '', form.get('password') ?? '');
      } else if (grantType === 'refresh_token') {
        const known = refreshTokens.get(form.get('refresh_token') ?? '');
        if (known === undefined) throw new HttpError(401, { error: 'invalid_grant' });
        user = known;
      } else {
        throw new HttpError(400, { error: 'unsupported_grant_type' });
      }
      const { token, ...rest } = issue(user, scopes, form.get('access_type') === 'offline');
      return send(res, 200, {
        access_token: token,
        token_type: 'Bearer',
        scope: scopes.join(' '),
        ...rest,
      });
    }
    throw new HttpError(405, { error: 'method not allowed' });
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (error instanceof HttpError) send(res, error.status, error.body);
      else send(res, 500, { error: String(error) });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  return {
    realm: `http://127.0.0.1:${port}${REALM_PATH}`,
    requests,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
