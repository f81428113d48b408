"""Keys of the records that travel between ServerApp and ClientApp.

Both sides import these names, so a renamed key breaks loudly at import
rather than silently at run time.
"""

# RecordDict entries
ARRAYS = "arrays"
CONFIG = "config"
METRICS = "metrics"

# ConfigRecord keys sent by the server
SERVER_ROUND = "server-round"
PROXIMAL_MU = "proximal-mu"  # set by Flower's FedProx

# MetricRecord keys sent back by clients
NUM_EXAMPLES = "num-examples"
TRAIN_LOSS = "train-loss"
EPSILON = "epsilon"
PARTITION_ID = "partition-id"
EVAL_LOSS = "eval-loss"
EVAL_ACCURACY = "eval-accuracy"

# Node config keys provided by Flower (simulation and SuperNode)
NODE_PARTITION_ID = "partition-id"
NODE_NUM_PARTITIONS = "num-partitions"

# Client state (context.state) entries
STATE_PRIVACY = "aureon.privacy"
STATE_ACCOUNTANT = "accountant"

# run_config key that carries Hydra overrides for `flwr run .`
RUN_CONFIG_OVERRIDES = "overrides"
