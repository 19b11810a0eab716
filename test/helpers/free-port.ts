import { connect, createServer } from 'node:net';

/**
 * A TCP port on 127.0.0.1 that was free a moment ago. Another process may take it before the
 * caller binds it, so callers retry on EADDRINUSE.
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => {
        if (address && typeof address === 'object') resolve(address.port);
        else reject(new Error('could not read the port of a loopback listener'));
      });
    });
  });
}

/** Privileged ports tried by {@link refusedHost}; nothing listens on them on a test machine. */
const CLOSED_PORT_CANDIDATES = [1, 3, 5, 7, 9, 11, 13];

/** Whether a connection to `127.0.0.1:port` is refused. */
function refuses(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code === 'ECONNREFUSED'));
  });
}

/**
 * `127.0.0.1:PORT` where connections are refused, and stay refused: a privileged port nothing
 * listens on. A port that was free a moment ago ({@link freePort}) is not that: the test
 * processes running beside this one bind ports the kernel picks from the same range, and a
 * client retrying there met another test's server (and that test saw its requests).
 */
export async function refusedHost(): Promise<string> {
  for (const port of CLOSED_PORT_CANDIDATES) {
    if (await refuses(port)) return `127.0.0.1:${port}`;
  }
  throw new Error(
    `every port of ${CLOSED_PORT_CANDIDATES.join(', ')} on 127.0.0.1 accepts connections: no refused host for the tests`,
  );
}
