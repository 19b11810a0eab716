'use strict';
// What ociferry's code imports from 'undici', and nothing else: the CLI bundle resolves 'undici'
// here (see bundle-cli.mjs). undici's own index also loads fetch, WebSocket, the mock agents,
// the caches and their Node built-ins (http2, sqlite...), about half of the CLI's start-up time
// and 9 MiB of memory that no ociferry command uses. Like undici's index, it gives dispatchers
// their request()/stream()/... methods. The library (dist/index.js) keeps importing 'undici'.
const Dispatcher = require('undici/lib/dispatcher/dispatcher');

Object.assign(Dispatcher.prototype, require('undici/lib/api'));

module.exports = {
  Dispatcher,
  Agent: require('undici/lib/dispatcher/agent'),
  Pool: require('undici/lib/dispatcher/pool'),
  ProxyAgent: require('undici/lib/dispatcher/proxy-agent'),
  getGlobalDispatcher: require('undici/lib/global').getGlobalDispatcher,
};
