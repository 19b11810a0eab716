import { isIPv6 } from 'node:net';
import { InvalidReferenceError, quote } from './errors.ts';

/** The registry name Docker Hub references normalise to. */
export const DOCKER_HUB = 'docker.io';

/** Host names users and tools give Docker Hub; all mean {@link DOCKER_HUB}. */
const DOCKER_HUB_ALIASES = new Set([DOCKER_HUB, 'index.docker.io', 'registry-1.docker.io']);
const DOCKER_HUB_API = 'registry-1.docker.io';
const DOMAIN_COMPONENT = /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/i;
const PORT_MAX = 65535;

/**
 * Normalise a registry `host[:port]`: lower-case host, canonical bracketed IPv6, port without
 * leading zeros, Docker Hub aliases as `docker.io`. Throws {@link InvalidReferenceError}.
 */
export function normalizeRegistry(host: string): string {
  return parseRegistryHost(host, host);
}

/** {@link normalizeRegistry} for the host part of a reference; errors name `input`, the whole reference. */
export function parseRegistryHost(host: string, input: string): string {
  const { name, port } = host.startsWith('[') ? splitIPv6(host, input) : splitDomain(host, input);
  const normalised = port === undefined ? name : `${name}:${checkPort(port, host, input)}`;
  return DOCKER_HUB_ALIASES.has(normalised) ? DOCKER_HUB : normalised;
}

/** The host that serves the registry API: `registry-1.docker.io` for Docker Hub, else `registry`. */
export function apiHost(registry: string): string {
  return registry === DOCKER_HUB ? DOCKER_HUB_API : registry;
}

/**
 * True when `registry` (any port) is `localhost`, in 127.0.0.0/8 or `[::1]`: the hosts that get
 * plain HTTP without `--plain-http` when they answer in it, and that no proxy is used for.
 * Decided on the host the URL parser connects to.
 */
export function isLoopbackRegistry(registry: string): boolean {
  let hostname: string;
  try {
    hostname = new URL(`http://${normalizeRegistry(registry)}/`).hostname;
  } catch {
    return false;
  }
  return (
    hostname === 'localhost' ||
    hostname === '[::1]' ||
    /^127\.\d+\.\d+\.\d+$/.test(hostname) ||
    /^\[::ffff:7f[0-9a-f]{2}:[0-9a-f]{1,4}\]$/.test(hostname)
  );
}

function splitIPv6(host: string, input: string): { name: string; port: string | undefined } {
  const close = host.indexOf(']');
  if (close < 0) {
    throw new InvalidReferenceError(input, `unclosed "[" in registry host ${quote(host)}`);
  }
  const address = host.slice(1, close);
  if (!/^[0-9a-f:.]+$/i.test(address) || !isIPv6(address)) {
    throw new InvalidReferenceError(
      input,
      `${quote(address)} in registry host ${quote(host)} is not an IPv6 address`,
    );
  }
  const rest = host.slice(close + 1);
  if (rest !== '' && !rest.startsWith(':')) {
    throw new InvalidReferenceError(
      input,
      `unexpected ${quote(rest)} after the IPv6 address in registry host ${quote(host)}`,
    );
  }
  return {
    name: new URL(`http://[${address}]/`).hostname,
    port: rest === '' ? undefined : rest.slice(1),
  };
}

function splitDomain(host: string, input: string): { name: string; port: string | undefined } {
  const colon = host.indexOf(':');
  const name = colon < 0 ? host : host.slice(0, colon);
  if (name === '' || !name.split('.').every((component) => DOMAIN_COMPONENT.test(component))) {
    throw new InvalidReferenceError(
      input,
      `invalid registry host ${quote(host)}: a host is dot-separated letters, digits and inner dashes, or an IPv6 address in brackets, with an optional :port`,
    );
  }
  return { name: name.toLowerCase(), port: colon < 0 ? undefined : host.slice(colon + 1) };
}

function checkPort(port: string, host: string, input: string): number {
  if (port === '') {
    throw new InvalidReferenceError(input, `registry host ${quote(host)} has an empty port`);
  }
  const value = /^[0-9]+$/.test(port) ? Number(port) : Number.NaN;
  if (Number.isNaN(value)) {
    throw new InvalidReferenceError(
      input,
      `port ${quote(port)} of registry host ${quote(host)} is not a number`,
    );
  }
  if (value < 1 || value > PORT_MAX) {
    throw new InvalidReferenceError(
      input,
      `port ${port} of registry host ${quote(host)} is out of range 1-${PORT_MAX}`,
    );
  }
  return value;
}
