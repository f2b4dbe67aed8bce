-- One database per service: a service never reads another's tables.
CREATE DATABASE yijian_routing OWNER yijian;
CREATE DATABASE yijian_escalation OWNER yijian;
CREATE DATABASE yijian_notify OWNER yijian;
