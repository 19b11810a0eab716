import { readBody } from '../body.ts';
import { parseErrorBody, RegistryError } from '../errors.ts';
import type { HttpClient, HttpResponse } from '../http.ts';
import { redactUrl } from '../redact.ts';
import type { Challenge } from './challenge.ts';
import type { Credential } from './credentials.ts';

/** A bearer token and how long it lives. */
export interface Token {
  readonly token: string;
  readonly expiresInSec: number;
}

/** Arguments of {@link fetchToken}. */
export interface TokenRequest {
  /** The `Bearer` challenge naming the realm and service. */
  challenge: Challenge;
  /** Base URL of the registry API; an `https` registry refuses an `http` realm. */
  registryUrl: URL;
  scopes: readonly string[];
  credential?: Credential;
  signal?: AbortSignal;
}

/** Token responses are small; anything bigger is not a token response. */
const TOKEN_RESPONSE_LIMIT = 1024 * 1024;
/** Lifetime assumed when the server gives none (distribution token spec). */
const DEFAULT_EXPIRES_IN = 60;
const CLIENT_ID = 'ociferry';

/**
 * Get a bearer token from the challenge's realm: the distribution token `GET` (repeated `scope`,
 * Basic credentials when there are some), or the OAuth2 `POST` with `grant_type=refresh_token` for
 * an identity token. Reads `token` or `access_token`; `expires_in` defaults to 60 s.
 */
export async function fetchToken(http: HttpClient, request: TokenRequest): Promise<Token> {
  const realm = realmUrl(request);
  const service = request.challenge.params.service;
  const credential = request.credential;
  let response: HttpResponse;
  let method: 'GET' | 'POST';
  if (credential?.kind === 'identityToken') {
    method = 'POST';
    const form = new URLSearchParams({
      grant_type: 'refresh_token',
      refresh_token: credential.token,
    });
    if (service !== undefined) form.set('service', service);
    if (request.scopes.length > 0) form.set('scope', request.scopes.join(' '));
    form.set('client_id', CLIENT_ID);
    response = await http.send({
      method,
      url: realm,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: Buffer.from(form.toString()),
      signal: request.signal,
    });
  } else {
    method = 'GET';
    const url = new URL(realm);
    if (service !== undefined) url.searchParams.append('service', service);
    for (const scope of request.scopes) url.searchParams.append('scope', scope);
    const headers: Record<string, string> = {};
    if (credential?.kind === 'basic') {
      headers.authorization = basicAuthorization(credential.username, credential.password);
    }
    response = await http.send({ method, url, headers, signal: request.signal });
  }
  const text = (await readBody(response, method, TOKEN_RESPONSE_LIMIT, 'token response')).toString(
    'utf8',
  );
  if (response.status !== 200) {
    const url = redactUrl(response.url);
    throw new RegistryError({
      code: response.status === 401 || response.status === 403 ? 'UNAUTHORIZED' : undefined,
      status: response.status,
      method,
      url,
      errors: parseErrorBody(text),
      message: `token request ${method} ${url} answered ${response.status}; check the credentials for ${request.registryUrl.host}`,
    });
  }
  return parseTokenResponse(text, method, redactUrl(response.url));
}

/** The `Authorization` value for Basic credentials. */
export function basicAuthorization(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
}

function realmUrl(request: TokenRequest): URL {
  const registry = request.registryUrl;
  const realm = request.challenge.params.realm;
  const refuse = (message: string) =>
    new RegistryError({ code: 'INSECURE_REALM', method: 'GET', url: redactUrl(registry), message });
  if (realm === undefined || !URL.canParse(realm)) {
    throw refuse(`${registry.host} sent a Bearer challenge without a usable realm URL`);
  }
  const url = new URL(realm);
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw refuse(`${registry.host} names a token realm with unsupported scheme ${url.protocol}`);
  }
  if (registry.protocol === 'https:' && url.protocol === 'http:') {
    throw refuse(
      `${registry.host} is served over https but names an http token realm (${redactUrl(url)}); refusing to send credentials in clear text`,
    );
  }
  return url;
}

function parseTokenResponse(text: string, method: string, url: string): Token {
  let body: { token?: unknown; access_token?: unknown; expires_in?: unknown };
  try {
    body = JSON.parse(text);
  } catch {
    body = {};
  }
  const token =
    typeof body.token === 'string' && body.token !== '' ? body.token : body.access_token;
  if (typeof token !== 'string' || token === '') {
    throw new RegistryError({
      code: 'UNAUTHORIZED',
      status: 200,
      method,
      url,
      message: `token response from ${url} carries neither "token" nor "access_token"`,
    });
  }
  const expiresIn =
    typeof body.expires_in === 'number' && body.expires_in > 0
      ? body.expires_in
      : DEFAULT_EXPIRES_IN;
  return { token, expiresInSec: expiresIn };
}
