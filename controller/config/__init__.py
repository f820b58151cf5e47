"""The plant config: schema (schema.py), loading (load.py), TOML sections with
errors that name file, key and line (toml.py)."""

from controller.config.load import device_point, load_config, loop_params, whole  # noqa: F401
from controller.config.schema import Config, DeviceCfg, LineCfg, LoopCfg  # noqa: F401
from controller.config.toml import ConfigError  # noqa: F401
