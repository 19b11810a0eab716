import { discardBody, readBody } from '../body.ts';
import { parseErrorBody, RegistryError } from '../errors.ts';
import type { HttpClient, HttpResponse } from '../http.ts';
import { redactUrl } from '../redact.ts';
import type { Challenge } from './challenge.ts';
import type { Credential } from './credentials.ts';
import { tokenRealm } from './realm.ts';

/** A bearer token and how long it lives. */
export interface Token {
  readonly token: string;
  readonly expiresInSec: number;
}

/** Arguments of {@link fetchToken}. */
export interface TokenRequest {
  /** The `Bearer` challenge naming the realm and service. */
  challenge: Challenge;
  /** Base URL of the registry API; decides which realms are acceptable (see {@link tokenRealm}). */
  registryUrl: URL;
  scopes: readonly string[];
  credential?: Credential;
  /**
   * Realms (origin + path) known to answer the OAuth2 POST with 404: identity tokens go there by
   * GET at once. A realm found answering so is added.
   */
  getOnlyRealms?: Set<string>;
  signal?: AbortSignal;
}

/** Token responses are small; anything bigger is not a token response. */
const TOKEN_RESPONSE_LIMIT = 1024 * 1024;
/** Lifetime assumed when the server gives none (distribution token spec). */
const DEFAULT_EXPIRES_IN = 60;
const CLIENT_ID = 'ociferry';

/** Username of Basic credentials whose password is an identity token (docker's credential-helper convention). */
const IDENTITY_TOKEN_USER = '<token>';

/**
 * Get a bearer token from the challenge's realm, once {@link tokenRealm} accepts it: the
 * distribution token `GET` (repeated `scope`, Basic credentials when there are some), or for an
 * identity token the OAuth2 `POST` with `grant_type=refresh_token`. A realm that answers that POST
 * with 404 only speaks GET (distribution `oauth.md`): the identity token then goes as the Basic
 * password (user: the credential's username, else `<token>`). A redirect of the GET is followed
 * only to a target that {@link tokenRealm} would accept as a realm. Reads `token` or
 * `access_token`; `expires_in` defaults to 60 s.
 */
export async function fetchToken(http: HttpClient, request: TokenRequest): Promise<Token> {
  const realm = await tokenRealm(request.challenge, request.registryUrl);
  const realmKey = `${realm.origin}${realm.pathname}`;
  const credential = request.credential;
  let response: HttpResponse | undefined;
  let method: 'GET' | 'POST' = 'POST';
  if (credential?.kind === 'identityToken' && !request.getOnlyRealms?.has(realmKey)) {
    response = await postRefreshToken(http, realm, credential.token, request);
    if (response.status === 404) {
      await discardBody(response);
      request.getOnlyRealms?.add(realmKey);
      response = undefined;
    }
  }
  if (response === undefined) {
    method = 'GET';
    const url = new URL(realm);
    const service = request.challenge.params.service;
    if (service !== undefined) url.searchParams.append('service', service);
    for (const scope of request.scopes) url.searchParams.append('scope', scope);
    const headers: Record<string, string> = {};
    if (credential?.kind === 'basic') {
      headers.authorization = basicAuthorization(credential.username, credential.password);
    } else if (credential?.kind === 'identityToken') {
      const user = credential.username ?? IDENTITY_TOKEN_USER;
      headers.authorization = basicAuthorization(user, credential.token);
    }
    response = await http.send({
      method,
      url,
      headers,
      signal: request.signal,
      // A realm that redirects is held to the same rules at every hop.
      checkRedirect: async (next) => {
        await tokenRealm({ scheme: 'bearer', params: { realm: next.href } }, request.registryUrl);
      },
    });
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

/** The OAuth2 `POST` exchanging a refresh (identity) token for an access token. */
function postRefreshToken(
  http: HttpClient,
  realm: URL,
  refreshToken: string,
  request: TokenRequest,
): Promise<HttpResponse> {
  const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken });
  const service = request.challenge.params.service;
  if (service !== undefined) form.set('service', service);
  if (request.scopes.length > 0) form.set('scope', request.scopes.join(' '));
  form.set('client_id', CLIENT_ID);
  return http.send({
    method: 'POST',
    url: realm,
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: Buffer.from(form.toString()),
    signal: request.signal,
  });
}

/** The `Authorization` value for Basic credentials. */
export function basicAuthorization(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
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
