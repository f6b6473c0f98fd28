/** Package entry: embed the broker in another process. The receiver SDK is `ssf-broker/receiver`. */
export { startBroker, type Broker } from './broker.js'
export { loadConfig, ConfigError, CONFIG_VARIABLES, type Config } from './config/config.js'
export { createLogger, type Logger } from './lib/log.js'
