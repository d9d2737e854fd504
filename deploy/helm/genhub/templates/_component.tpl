{{/*
One GenHub component from its values block: ServiceAccount, ConfigMap, Deployment, Service,
PodDisruptionBudget, HorizontalPodAutoscaler and NetworkPolicy. The gateway, task-store and
every provider worker are rendered by this one template.

Takes a dict:
  root          the chart's root context
  component     "gateway", "taskstore" or "worker-<provider>"
  values        the component's values (replicas, image, resources, autoscaling, pdb, ...)
  ports         [{name, port}]: every container port (the Service exposes them all)
  healthPort    the port of the gRPC health service (probes)
  config        {NAME: "value"}: non-secret settings, in the component's ConfigMap
  env           a rendered env list (secret references)
  externalScaler  true when KEDA owns the replica count (no HPA, no replicas field)
  ingress       [{ports: [names], from: [peers] (absent: any source)}]: NetworkPolicy rules
  extraLabels   {label: value} added to the pods (used to admit them elsewhere)
*/}}
{{- define "genhub.component" -}}
{{- $root := .root }}
{{- $v := .values }}
{{- $ctx := dict "root" $root "component" .component }}
{{- $name := include "genhub.componentName" $ctx }}
{{- $configData := toYaml .config }}
{{- $hpa := and $v.autoscaling.enabled (not .externalScaler) }}
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ $name }}
  labels:
    {{- include "genhub.labels" $ctx | nindent 4 }}
# No GenHub component calls the Kubernetes API.
automountServiceAccountToken: false
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ $name }}
  labels:
    {{- include "genhub.labels" $ctx | nindent 4 }}
data:
  {{- $configData | nindent 2 }}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ $name }}
  labels:
    {{- include "genhub.labels" $ctx | nindent 4 }}
spec:
  {{- if not (or $hpa .externalScaler) }}
  replicas: {{ $v.replicas }}
  {{- end }}
  revisionHistoryLimit: 5
  strategy:
    type: RollingUpdate
    rollingUpdate:
      # A new pod is ready before an old one drains: capacity never drops during a rollout.
      maxSurge: 25%
      maxUnavailable: 0
  selector:
    matchLabels:
      {{- include "genhub.selectorLabels" $ctx | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "genhub.labels" $ctx | nindent 8 }}
        {{- with .extraLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      annotations:
        checksum/config: {{ $configData | sha256sum }}
        checksum/secret: {{ include (print $root.Template.BasePath "/secret.yaml") $root | sha256sum }}
        {{- with $v.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      serviceAccountName: {{ $name }}
      automountServiceAccountToken: false
      enableServiceLinks: false
      terminationGracePeriodSeconds: {{ $v.terminationGracePeriodSeconds }}
      securityContext:
        {{- toYaml $root.Values.podSecurityContext | nindent 8 }}
      {{- with $root.Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      containers:
        - name: {{ .component }}
          image: {{ include "genhub.image" (dict "root" $root "image" $v.image) | quote }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          ports:
            {{- range .ports }}
            - name: {{ .name }}
              containerPort: {{ .port }}
              protocol: TCP
            {{- end }}
          envFrom:
            - configMapRef:
                name: {{ $name }}
          {{- with .env }}
          env:
            {{- . | nindent 12 }}
          {{- end }}
          # gRPC health (genhub.common.server): "liveness" is SERVING while the process
          # answers, draining included; "" (readiness) only once dependencies are connected
          # and until SIGTERM.
          startupProbe:
            grpc:
              port: {{ .healthPort }}
              service: liveness
            periodSeconds: 2
            failureThreshold: 60
          livenessProbe:
            grpc:
              port: {{ .healthPort }}
              service: liveness
            periodSeconds: 10
            timeoutSeconds: 2
            failureThreshold: 3
          readinessProbe:
            grpc:
              port: {{ .healthPort }}
            periodSeconds: 5
            timeoutSeconds: 2
            failureThreshold: 2
          resources:
            {{- toYaml $v.resources | nindent 12 }}
          securityContext:
            {{- toYaml $root.Values.containerSecurityContext | nindent 12 }}
          volumeMounts:
            # The one writable path (HOME and temporary files); the root FS is read-only.
            - name: tmp
              mountPath: /tmp
      volumes:
        - name: tmp
          emptyDir:
            sizeLimit: 256Mi
      {{- with $v.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.affinity }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.topologySpreadConstraints }}
      topologySpreadConstraints:
        {{- toYaml . | nindent 8 }}
      {{- end }}
---
apiVersion: v1
kind: Service
metadata:
  name: {{ $name }}
  labels:
    {{- include "genhub.labels" $ctx | nindent 4 }}
    genhub.dev/metrics: "true"
  {{- with .serviceAnnotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  type: {{ .serviceType | default "ClusterIP" }}
  selector:
    {{- include "genhub.selectorLabels" $ctx | nindent 4 }}
  ports:
    {{- range .ports }}
    - name: {{ .name }}
      port: {{ .port }}
      targetPort: {{ .name }}
      protocol: TCP
      {{- if eq .name "grpc" }}
      appProtocol: grpc
      {{- end }}
    {{- end }}
{{- if $v.pdb.enabled }}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ $name }}
  labels:
    {{- include "genhub.labels" $ctx | nindent 4 }}
spec:
  maxUnavailable: {{ $v.pdb.maxUnavailable }}
  selector:
    matchLabels:
      {{- include "genhub.selectorLabels" $ctx | nindent 6 }}
{{- end }}
{{- if $hpa }}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ $name }}
  labels:
    {{- include "genhub.labels" $ctx | nindent 4 }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ $name }}
  minReplicas: {{ $v.autoscaling.minReplicas }}
  maxReplicas: {{ $v.autoscaling.maxReplicas }}
  metrics:
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: {{ $v.autoscaling.targetCPUUtilizationPercentage }}
{{- end }}
{{- if $root.Values.networkPolicy.enabled }}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ $name }}
  labels:
    {{- include "genhub.labels" $ctx | nindent 4 }}
spec:
  podSelector:
    matchLabels:
      {{- include "genhub.selectorLabels" $ctx | nindent 6 }}
  policyTypes: [Ingress]
  ingress:
    {{- range .ingress }}
    - ports:
        {{- range .ports }}
        - port: {{ . }}
          protocol: TCP
        {{- end }}
      {{- if .from }}
      from:
        {{- toYaml .from | nindent 8 }}
      {{- end }}
    {{- end }}
{{- end }}
{{- end }}
