#!/usr/bin/env python3
"""Write the seed inputs of the fuzz targets into tests/fuzz/corpus/<target>/.

usage: mkseeds.py [--manifest-tool PATH]

Seeds are named seed-*; libFuzzer's merged finds keep their hash names.
Sources: the AWS SigV4 vectors in tests/vectors/sigv4, contrib's env
example, radosgw's and AWS's documented XML answers, OpenSearch bulk
answers, IMDS/ECS JSON, STS XML, shared-file INI, and manifests written by
manifest_to_json (seed_manifest.c) when --manifest-tool is given.
"""
import hashlib
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CORPUS = os.path.join(HERE, "corpus")


def put(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


# --- sigv4: method NUL path NUL query NUL payload-hash (NUL name NUL value)*

def parse_vector(text):
    head, _, body = text.partition(b"\n\n")
    lines = head.split(b"\n")
    method, target, _ = lines[0].split(b" ", 2) if lines[0].count(b" ") >= 2 \
        else (lines[0].split(b" ") + [b"", b""])[:3]
    path, _, query = target.partition(b"?")
    headers = []
    for ln in lines[1:]:
        if ln[:1] in (b" ", b"\t") and headers:
            headers[-1][1] += b"\n" + ln
        elif b":" in ln:
            name, _, value = ln.partition(b":")
            headers.append([name, value])
    headers.append([b"X-Amz-Date", b"20150830T123600Z"])
    return method, path, query, body, headers


def sigv4_seeds():
    vdir = os.path.join(ROOT, "tests", "vectors", "sigv4", "v4")
    for case in sorted(os.listdir(vdir)):
        with open(os.path.join(vdir, case, "request.txt"), "rb") as f:
            method, path, query, body, headers = parse_vector(f.read())
        digest = hashlib.sha256(body).hexdigest().encode()
        fields = [method, path, query, digest]
        for name, value in headers:
            fields += [name, value]
        put("sigv4", case, b"\0".join(fields))
    s3 = [b"PUT", b"/logs/a b/caf\xc3\xa9+x~y.tar",
          b"partNumber=3&uploadId=2~abc%2Fdef+g", b"UNSIGNED-PAYLOAD",
          b"Host", b"s3.eu-west-1.amazonaws.com",
          b"x-amz-content-sha256", b"UNSIGNED-PAYLOAD",
          b"X-Amz-Date", b"20240501T120000Z",
          b"X-Amz-Security-Token", b"FwoGZXIvYXdzEJr//////////wEaDN",
          b"x-amz-storage-class", b"STANDARD_IA"]
    put("sigv4", "s3-upload-part", b"\0".join(s3))
    put("sigv4", "s3-list", b"\0".join([
        b"GET", b"/logs", b"list-type=2&prefix=a%20b&delimiter=%2F&uploads",
        b"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        b"host", b"127.0.0.1:7480", b"x-amz-date", b"20240501T120000Z"]))


# --- config: flags byte, then NAME=VALUE lines

def config_seeds():
    with open(os.path.join(ROOT, "contrib", "s3-batch.env.example")) as f:
        example = f.read()
    live = "\n".join(l for l in example.splitlines()
                     if l and not l.startswith("#"))
    every = "\n".join(l.lstrip("#") for l in example.splitlines()
                      if "=" in l and l.startswith("#") and " " not in l)
    for flags in range(4):
        put("config", "example-%d" % flags, bytes([flags]) + live.encode())
    put("config", "all-set", b"\x03" + (live + "\n" + every).encode())
    put("config", "empty", b"\x00")
    put("config", "bad-port", b"\x02ELASTICSEARCH_LOGS_HOST=es\n"
        b"ELASTICSEARCH_LOGS_PORT=99999\nMANIFEST_FALLBACK_BUCKET=b/p/q\n")
    put("config", "kms", b"\x01S3BATCH_SSE=AWS:KMS\n"
        b"S3BATCH_SSE_KMS_KEY_ID=alias/k\nS3BATCH_ADDRESSING_STYLE=Virtual\n"
        b"AWS_ENDPOINT_URL_S3=http://127.0.0.1:7480///\nHOME=relative\n")
    put("config", "limits", b"\x00S3BATCH_MAX_RUN_MB=8796093022207\n"
        b"S3BATCH_MAX_RUN_SECONDS=4611686018427387903\n"
        b"S3BATCH_SETTLE_SECONDS=-1\nMAX_BATCH_SIZE_MB=0x10\n"
        b"RSYSLOG_PORT=514\nRSYSLOG_PROTOCOL=tcp\nS3BATCH_IGNORE=\n"
        b"ELASTICSEARCH_LOGS_USERNAME=u\n")


# --- s3xml: S3 answers

S3XML = {
    # radosgw, as answered to the integration tests
    "rgw-nosuchbucket": '<?xml version="1.0" encoding="UTF-8"?><Error><Code>'
    'NoSuchBucket</Code><Message></Message><BucketName>no-such-bucket-fuzz'
    '</BucketName><RequestId>tx00000ea174de2179aeb94-006b06e852-1025-default'
    '</RequestId><HostId>1025-default-default</HostId></Error>',
    "aws-signature": '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>'
    'SignatureDoesNotMatch</Code><Message>The request signature we '
    'calculated does not match the signature you provided. Check your key '
    'and signing method.</Message><AWSAccessKeyId>AKIAEXAMPLE'
    '</AWSAccessKeyId><StringToSign>AWS4-HMAC-SHA256\n20240501T120000Z\n'
    '20240501/us-east-1/s3/aws4_request\nabc</StringToSign><RequestId>'
    '4442587FB7D0A2F9</RequestId><HostId>h</HostId></Error>',
    "aws-region": '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>'
    'AuthorizationHeaderMalformed</Code><Message>The authorization header '
    "is malformed; the region 'us-east-1' is wrong; expecting 'eu-west-1'"
    '</Message><Region>eu-west-1</Region><RequestId>R</RequestId><HostId>H'
    '</HostId></Error>',
    "aws-slowdown": '<Error><Code>SlowDown</Code><Message>Please reduce your '
    'request rate.</Message><RequestId>R</RequestId></Error>',
    "create-multipart": '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<InitiateMultipartUploadResult xmlns="http://s3.amazonaws.com/doc/'
    '2006-03-01/"><Bucket>logs</Bucket><Key>a/b%20c.tar</Key><UploadId>'
    '2~VXBsb2FkIElEIGZvciA2aWWpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA'
    '</UploadId></InitiateMultipartUploadResult>',
    "complete-multipart": '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<CompleteMultipartUploadResult xmlns="http://s3.amazonaws.com/doc/'
    '2006-03-01/"><Location>https://logs.s3.amazonaws.com/a.tar</Location>'
    '<Bucket>logs</Bucket><Key>a.tar</Key><ETag>"3858f62230ac3c915f300c664'
    '312c11f-9"</ETag></CompleteMultipartUploadResult>',
    "complete-200-error": '<?xml version="1.0"?><Error><Code>InternalError'
    '</Code><Message>try again</Message></Error>',
    "entity": '<?xml version="1.0"?><!DOCTYPE Error [<!ENTITY m "long '
    'text">]><Error><Code>&m;&m;</Code><Message><![CDATA[a<b]]>&amp;&#233;'
    '</Message></Error>',
    "nested": '<a:Error xmlns:a="urn:x"><a:Code>X</a:Code><Other><Code>Y'
    '</Code></Other><Code>Z</Code></a:Error>',
}


# --- es_bulk: count byte, then the answer (filter_path as es.c asks)

ES = {
    "all-ok": (2, '{"errors":false,"items":[{"index":{"status":201}},'
               '{"index":{"status":200}}]}'),
    "mixed": (4, '{"errors":true,"items":[{"index":{"status":201}},'
              '{"index":{"status":400,"error":{"type":"mapper_parsing_'
              'exception","reason":"failed to parse field [file.size] of '
              "type [long] in document with id 'abc'. Preview of field's "
              "value: 'x'\"}}},{\"index\":{\"status\":429,\"error\":{\"type\":"
              '"es_rejected_execution_exception","reason":"rejected execution'
              ' of coordinating operation [coordinating_and_primary_bytes=0,'
              ' replica_bytes=0, all_bytes=0, coordinating_operation_bytes='
              '1024, max_coordinating_and_primary_bytes=0]"}}},{"index":'
              '{"status":503,"error":{"type":"unavailable_shards_exception",'
              '"reason":"[s3-batch-manifest][0] primary shard is not active'
              '"}}}]}'),
    "blocked": (1, '{"errors":true,"items":[{"index":{"status":403,"error":'
                '{"type":"cluster_block_exception","reason":"index '
                '[s3-batch-manifest] blocked by: [FORBIDDEN/8/index write '
                '(api)];"}}}]}'),
    "full-answer": (1, '{"took":30,"errors":false,"items":[{"index":{'
                    '"_index":"s3-batch-manifest","_id":"5f1c","_version":1,'
                    '"result":"created","_shards":{"total":2,"successful":1,'
                    '"failed":0},"_seq_no":0,"_primary_term":1,"status":201}}'
                    ']}'),
    "count-mismatch": (3, '{"errors":false,"items":[{"index":{"status":201}'
                       '}]}'),
    "no-status": (2, '{"items":[{"index":{}},{"create":{"status":"201"}}]}'),
    "odd-numbers": (3, '{"items":[{"index":{"status":2.01e2}},{"index":'
                    '{"status":-1}},{"index":{"status":499.9}}]}'),
    "error-no-reason": (1, '{"items":[{"index":{"status":409,"error":{'
                        '"type":"version_conflict_engine_exception"}}}]}'),
}


# --- credentials

CREDS_JSON = {
    "imds": '{\n  "Code" : "Success",\n  "LastUpdated" : "2024-05-01T11:'
    '50:00Z",\n  "Type" : "AWS-HMAC",\n  "AccessKeyId" : "ASIAIOSFODNN7EXAM'
    'PLE",\n  "SecretAccessKey" : "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY'
    '",\n  "Token" : "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQ'
    'D6example==",\n  "Expiration" : "2024-05-01T18:05:00Z"\n}',
    "ecs": '{"AccessKeyId":"ASIAECS","Expiration":"2024-05-01T12:34:56.789+'
    '02:00","RoleArn":"arn:aws:iam::123456789012:role/task","SecretAccessKey'
    '":"secretsecret","Token":"tok"}',
    "imds-failure": '{"Code":"AssumeRoleUnauthorizedAccess","Message":"EC2 '
    'cannot assume the role s3-batch.","LastUpdated":"2024-05-01T11:50:00Z"}',
    "static": '{"AccessKeyId":"AKIA","SecretAccessKey":"s","Token":""}',
    "bad-expiration": '{"AccessKeyId":"A","SecretAccessKey":"S","Expiration":'
    '"2024-02-30T00:00:00Z"}',
    "blank-key": '{"AccessKeyId":"A B","SecretAccessKey":"S\\u0000x"}',
}

STS = {
    "ok": '<?xml version="1.0"?>\n<AssumeRoleWithWebIdentityResponse xmlns='
    '"https://sts.amazonaws.com/doc/2011-06-15/">\n <AssumeRoleWithWebIdentity'
    'Result>\n  <SubjectFromWebIdentityToken>system:serviceaccount:ingest:s3'
    '</SubjectFromWebIdentityToken>\n  <AssumedRoleUser><Arn>arn:aws:sts::12'
    '3456789012:assumed-role/s3-batch/s3-batch-42</Arn><AssumedRoleId>AROA:s'
    '3-batch-42</AssumedRoleId><AccessKeyId>WRONGPLACE</AccessKeyId>'
    '</AssumedRoleUser>\n  <Credentials>\n   <SessionToken>FwoGZXIvYXdzEJr'
    '</SessionToken>\n   <SecretAccessKey>wJalrXUtnFEMI/K7MDENG/bPxRfiCYzE'
    'XAMPLEKEY</SecretAccessKey>\n   <Expiration>2024-05-01T12:00:00Z'
    '</Expiration>\n   <AccessKeyId>ASIASTS</AccessKeyId>\n  </Credentials>'
    '\n  <Provider>www.amazon.com</Provider>\n </AssumeRoleWithWebIdentity'
    'Result>\n <ResponseMetadata><RequestId>ad4156e9-bce1-11e2-82e6-6b6efEXA'
    'MPLE</RequestId></ResponseMetadata>\n</AssumeRoleWithWebIdentityResponse>',
    "error": '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/'
    '">\n  <Error>\n    <Type>Sender</Type>\n    <Code>InvalidIdentityToken'
    '</Code>\n    <Message>Token expired: current date/time 1714564800 must '
    'be before the expiration date/time 1714561200</Message>\n  </Error>\n'
    '  <RequestId>r</RequestId>\n</ErrorResponse>',
    "doctype": '<!DOCTYPE x [<!ENTITY a "secret">]><AssumeRoleWithWebIdentity'
    'Response/>',
    "prefixed": '<s:AssumeRoleWithWebIdentityResponse xmlns:s="urn:s"><s:Assu'
    'meRoleWithWebIdentityResult><s:Credentials><s:AccessKeyId>A</s:AccessK'
    'eyId><s:SecretAccessKey>S</s:SecretAccessKey></s:Credentials></s:Assum'
    'eRoleWithWebIdentityResult></s:AssumeRoleWithWebIdentityResponse>',
}

INI = {
    "credentials": "default\n[default]\naws_access_key_id = AKIAIOSFODNN7EX"
    "AMPLE\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    "\n\n[ci]\naws_access_key_id=AKIACI\naws_secret_access_key=ci ; comment"
    "\n",
    "config": "profile ci\n# ~/.aws/config\n[default]\nregion = us-east-1\n\n"
    "[profile   ci]\nregion=eu-west-1\ns3 =\n  addressing_style = path\n  "
    "max_concurrent_requests = 20\naws_session_token = tok#not-a-comment\r\n",
    "repeated": "a\n[a]\nregion=one\n[b]\nregion=two\n[a]\nREGION = three  "
    "# c\n",
    "bad": "x\nregion=before-section\n[x\n",
    "sso": "profile dev\n[sso-session my-sso]\nsso_start_url = https://my-sso"
    "-portal.awsapps.com/start\n[profile dev]\nsso_session = my-sso\n"
    "sso_account_id = 111122223333\n\tindented = continuation\n",
}

TIMES = ["2024-05-01T12:00:00Z", "2024-05-01T12:00:00.123456Z",
         "2024-05-01t12:00:00z", "2024-05-01 12:00:00+02:00",
         "2024-02-29T23:59:60-0530", "1970-01-01T00:00:00+23:59",
         "9999-12-31T23:59:59Z", "2023-02-29T00:00:00Z", "2024-05-01T12:00Z",
         "2024-05-01T12:00:00,5Z"]


def main():
    tool = None
    if len(sys.argv) == 3 and sys.argv[1] == "--manifest-tool":
        tool = sys.argv[2]
    sigv4_seeds()
    config_seeds()
    for name, xml in S3XML.items():
        put("s3xml", name, xml)
    for name, (n, body) in ES.items():
        put("es_bulk", name, bytes([n]) + body.encode())
    for name, text in CREDS_JSON.items():
        put("creds_json", name, text)
    for name, text in STS.items():
        put("creds_sts", name, text)
    # past the 16 KiB field and 64 KiB body caps (run.sh: larger max_len)
    put("creds_sts", "big-token", STS["ok"].replace(
        "FwoGZXIvYXdzEJr", "FwoG" + "A" * (16 * 1024)))
    put("creds_sts", "big-body", STS["ok"].replace(
        "<Provider>", "<Pad>" + "x" * 66000 + "</Pad><Provider>"))
    for name, text in INI.items():
        put("creds_ini", name, text)
    for i, t in enumerate(TIMES):
        put("creds_time", "%02d" % i, t)
    if tool is not None:
        for kind in ("batch", "sync"):
            put("manifest", kind, subprocess.check_output([tool, kind]))


if __name__ == "__main__":
    main()
